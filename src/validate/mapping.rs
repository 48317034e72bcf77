//! From the model and device names of published tables to the shipped catalogs.
//!
//! A table name maps to a catalog entry only where the shapes that set the latency are
//! the same; every approximation is stated in the mapping's notes, and names with no
//! faithful counterpart are skipped with the reason.

use serde::Serialize;

/// A table's model name mapped to the model catalog.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelMapping {
    /// The catalog id.
    pub model: String,
    /// `--max-model-len` the measured engine would have used, where the catalog
    /// entry's differs.
    pub max_model_len: Option<u32>,
    /// What differs from the measured model.
    pub note: Option<String>,
}

/// A table's device name mapped to the hardware catalog.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HardwareMapping {
    /// The catalog name.
    pub hardware: String,
    /// What is uncertain.
    pub note: Option<String>,
}

/// Map a model name of the Argonne or Splitwise tables.
pub fn model(name: &str) -> Result<ModelMapping, String> {
    let exact = |id: &str| {
        Ok(ModelMapping {
            model: id.to_owned(),
            max_model_len: None,
            note: None,
        })
    };
    let llama3 = |id: &str| {
        Ok(ModelMapping {
            model: id.to_owned(),
            max_model_len: Some(8192),
            note: Some(format!(
                "{name} is not shipped; {id} has the same layer shapes (it differs in RoPE scaling and maximum length, so max_model_len is set to Llama 3's 8192)"
            )),
        })
    };
    match name.trim().to_ascii_lowercase().as_str() {
        "meta-llama/llama-2-7b-hf" => exact("meta-llama/Llama-2-7b-hf"),
        "meta-llama/llama-2-13b-hf" => exact("meta-llama/Llama-2-13b-hf"),
        "meta-llama/llama-2-70b-hf" | "llama2-70b" => exact("meta-llama/Llama-2-70b-hf"),
        "meta-llama/meta-llama-3-8b" => llama3("meta-llama/Llama-3.1-8B"),
        "meta-llama/meta-llama-3-70b" => llama3("meta-llama/Llama-3.1-70B"),
        "mistralai/mistral-7b-v0.1" => exact("mistralai/Mistral-7B-v0.1"),
        "mistralai/mixtral-8x7b-v0.1" => exact("mistralai/Mixtral-8x7B-v0.1"),
        "facebook/opt-6.7b" => exact("facebook/opt-6.7b"),
        _ => Err(format!(
            "model `{name}` has no shipped config with the same shapes"
        )),
    }
}

/// Map a device name of the Argonne or Splitwise tables.
pub fn hardware(name: &str) -> Result<HardwareMapping, String> {
    let map = |hw: &str, note: Option<&str>| {
        Ok(HardwareMapping {
            hardware: hw.to_owned(),
            note: note.map(str::to_owned),
        })
    };
    match name.trim().to_ascii_lowercase().as_str() {
        "nvidia a100 gpu" => map(
            "A100-SXM4-40GB",
            Some("the table says only \"Nvidia A100 GPU\"; most likely the ALCF Polaris A100-SXM4-40GB"),
        ),
        "nvidia h100 gpu" => map(
            "H100-SXM5-80GB",
            Some("the table does not say SXM or PCIe, 80 or 94 GB; taken as H100-SXM5-80GB"),
        ),
        "amd mi300x gpu" => map("MI300X", Some("vLLM ROCm build (v0.6.1 per the repo's README)")),
        "a100-80gb" => map("A100-SXM4-80GB", Some("DGX-A100")),
        "h100-80gb" => map("H100-SXM5-80GB", Some("DGX-H100")),
        "h100-80gb-pcap" => Err("power-capped H100 (h100-80gb-pcap): no catalog entry models the capped clocks".into()),
        "nvidia gh200 gpu" => Err("GH200 has no hardware file".into()),
        "amd mi250 gpu" => Err("MI250 has no hardware file (MI250X is a different part, and whether one device means one GCD is not stated)".into()),
        _ => Err(format!("device `{name}` has no hardware file")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_and_skips() {
        let m = model("meta-llama/Meta-Llama-3-8B").unwrap();
        assert_eq!(m.model, "meta-llama/Llama-3.1-8B");
        assert_eq!(m.max_model_len, Some(8192));
        assert!(m.note.unwrap().contains("same layer shapes"));
        assert_eq!(
            model("llama2-70b").unwrap().model,
            "meta-llama/Llama-2-70b-hf"
        );
        assert!(model("bloom-176b").is_err());
        assert_eq!(
            hardware("Nvidia A100 GPU").unwrap().hardware,
            "A100-SXM4-40GB"
        );
        assert!(hardware("h100-80gb-pcap").is_err());
    }

    #[test]
    fn every_mapping_resolves_in_the_shipped_catalogs() {
        let paths = crate::paths::DataPaths::builtin();
        let models = crate::model::ModelCatalog::load(&paths.model_configs).unwrap();
        let hw = crate::hardware::HardwareCatalog::load(&paths.hardware_dir()).unwrap();
        for n in [
            "meta-llama/Llama-2-7b-hf",
            "meta-llama/Llama-2-13b-hf",
            "llama2-70b",
            "meta-llama/Meta-Llama-3-8B",
            "meta-llama/Meta-Llama-3-70B",
            "mistralai/Mistral-7B-v0.1",
            "mistralai/Mixtral-8x7B-v0.1",
            "facebook/opt-6.7b",
        ] {
            models.resolve(&model(n).unwrap().model).unwrap();
        }
        for n in [
            "Nvidia A100 GPU",
            "Nvidia H100 GPU",
            "AMD MI300X GPU",
            "a100-80gb",
            "h100-80gb",
        ] {
            hw.get(&hardware(n).unwrap().hardware).unwrap();
        }
    }
}
