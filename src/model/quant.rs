//! The checkpoint's declared weight format: `torch_dtype` and `quantization_config`.

use super::config::RawConfig;
use super::spec::{Quantization, WeightFormat};
use crate::dtype::DType;
use crate::error::Result;

/// `torch_dtype` (or the newer `dtype`) and `quantization_config`.
pub(crate) fn weight_format(raw: &RawConfig) -> Result<WeightFormat> {
    let torch_dtype = match raw.first_present(&["torch_dtype", "dtype"]) {
        Some(field) => {
            let s = raw.opt_str(field)?.unwrap_or_default();
            s.parse::<DType>().map_err(|msg| raw.error(field, msg))?
        }
        None => DType::Bf16,
    };
    let quantization = match raw.opt_object("quantization_config")? {
        None => None,
        Some(q) => Some(quantization(&q)?),
    };
    Ok(WeightFormat {
        torch_dtype,
        quantization,
    })
}

fn quantization(q: &RawConfig) -> Result<Quantization> {
    let method = q
        .opt_str("quant_method")?
        .ok_or_else(|| q.error("quant_method", "missing required field"))?
        .to_owned();
    let dtype = match method.to_ascii_lowercase().as_str() {
        "awq" | "gptq" | "awq_marlin" | "gptq_marlin" => int_bits(q, "bits", true)?,
        "compressed-tensors" => compressed_tensors_dtype(q)?,
        "modelopt" => modelopt_dtype(q)?,
        other => other.parse::<DType>().map_err(|_| {
            q.error(
                "quant_method",
                format!(
                    "unsupported quantization `{method}`; supported: fp8, fbgemm_fp8, mxfp4, \
                     awq, gptq, compressed-tensors, modelopt, int8"
                ),
            )
        })?,
    };
    let block_size = match q.opt_u64_list("weight_block_size")? {
        None => None,
        Some(v) => match v.as_slice() {
            [r, c] => Some([*r, *c]),
            _ => {
                return Err(q.error(
                    "weight_block_size",
                    format!("expected [rows, columns], found {} numbers", v.len()),
                ))
            }
        },
    };
    // compressed-tensors calls the list `ignore`, ModelOpt `exclude_modules`.
    let skip_field = q
        .first_present(&["modules_to_not_convert", "ignore", "exclude_modules"])
        .unwrap_or("modules_to_not_convert");
    let modules_to_not_convert = q
        .opt_str_list(skip_field)?
        .unwrap_or_default()
        .into_iter()
        .map(str::to_owned)
        .collect();
    Ok(Quantization {
        method,
        dtype,
        block_size,
        modules_to_not_convert,
    })
}

/// Integer weights of `field` bits (4 or 8; 4 when absent and `default_4`).
fn int_bits(q: &RawConfig, field: &str, default_4: bool) -> Result<DType> {
    match q.opt_positive(field)? {
        Some(4) => Ok(DType::Int4),
        None if default_4 => Ok(DType::Int4),
        Some(8) => Ok(DType::Int8),
        None => Err(q.error(field, "missing required field")),
        Some(b) => Err(q.error(
            field,
            format!("{b}-bit weights are not supported; expected 4 or 8"),
        )),
    }
}

/// NVIDIA ModelOpt: the weight format its `quant_algo` names (`FP8`, `FP8_BLOCK`...,
/// `NVFP4`, `W4A16_AWQ`, `W8A8_SQ_...`).
fn modelopt_dtype(q: &RawConfig) -> Result<DType> {
    let algo = q
        .opt_str("quant_algo")?
        .ok_or_else(|| q.error("quant_algo", "missing required field"))?;
    let a = algo.to_ascii_uppercase();
    if a.starts_with("FP8") {
        Ok(DType::Fp8)
    } else if a == "NVFP4" || a.starts_with("NVFP4_") {
        Ok(DType::Nvfp4)
    } else if a.starts_with("W4A16") || a.starts_with("W4A8") {
        Ok(DType::Int4)
    } else if a.starts_with("W8A8") || a.starts_with("INT8") {
        Ok(DType::Int8)
    } else {
        Err(q.error(
            "quant_algo",
            format!("unsupported ModelOpt algorithm `{algo}`; supported: FP8, NVFP4, W4A16_AWQ, W8A8_SQ"),
        ))
    }
}

/// compressed-tensors (llm-compressor): the weight format of its `config_groups`, which
/// must all agree. 8-bit `float` is FP8; 8- or 4-bit `int` is INT8 or INT4.
fn compressed_tensors_dtype(q: &RawConfig) -> Result<DType> {
    let groups = q
        .opt_object("config_groups")?
        .ok_or_else(|| q.error("config_groups", "missing required field"))?;
    let mut found: Option<DType> = None;
    for name in groups.keys() {
        let Some(group) = groups.opt_object(&name)? else {
            continue;
        };
        let weights = group
            .opt_object("weights")?
            .ok_or_else(|| group.error("weights", "missing required field"))?;
        let dtype = match weights.opt_str("type")?.unwrap_or("int") {
            "float" => match weights.opt_positive("num_bits")? {
                Some(8) => DType::Fp8,
                _ => {
                    return Err(
                        weights.error("num_bits", "only 8-bit float weights (FP8) are supported")
                    )
                }
            },
            "int" => int_bits(&weights, "num_bits", false)?,
            other => {
                return Err(weights.error(
                    "type",
                    format!("unknown weight type `{other}`; expected `int` or `float`"),
                ))
            }
        };
        match found {
            Some(d) if d != dtype => {
                return Err(groups.error(
                    &name,
                    format!("mixes {d} and {dtype} weights; only one format is supported"),
                ))
            }
            _ => found = Some(dtype),
        }
    }
    found.ok_or_else(|| q.error("config_groups", "has no groups"))
}

#[cfg(test)]
mod tests {
    use crate::dtype::DType;
    use crate::model::ModelSpec;
    use serde_json::json;
    use std::path::Path;

    fn quant(q: serde_json::Value) -> crate::Result<ModelSpec> {
        let v = json!({
            "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
            "num_attention_heads": 4, "vocab_size": 10, "max_position_embeddings": 16,
            "torch_dtype": "float16", "quantization_config": q
        });
        ModelSpec::from_json("t", Path::new("t.json"), &v.to_string())
    }

    #[test]
    fn declared_formats() {
        let d = |q| quant(q).unwrap().weight_format.quantization.unwrap().dtype;
        assert_eq!(d(json!({"quant_method": "gptq", "bits": 8})), DType::Int8);
        assert_eq!(d(json!({"quant_method": "awq"})), DType::Int4);
        assert_eq!(d(json!({"quant_method": "fbgemm_fp8"})), DType::Fp8);
        let mo = |algo: &str| d(json!({"quant_method": "modelopt", "quant_algo": algo}));
        assert_eq!(mo("FP8"), DType::Fp8);
        assert_eq!(mo("NVFP4"), DType::Nvfp4);
        assert_eq!(mo("W4A16_AWQ"), DType::Int4);
        let ct = json!({
            "quant_method": "compressed-tensors",
            "ignore": ["lm_head", "model.layers.*.mlp"],
            "config_groups": {"group_0": {"targets": ["Linear"],
                "weights": {"num_bits": 8, "type": "float"}}}
        });
        let s = quant(ct).unwrap();
        let q = s.weight_format.quantization.as_ref().unwrap();
        assert_eq!(q.dtype, DType::Fp8);
        // `ignore` leaves the MLP in fp16; attention is FP8.
        let ops = &s.layers[0].ops;
        assert_eq!(s.op_weight_dtype(&ops[0], None), DType::Fp8);
        assert_eq!(s.op_weight_dtype(&ops[2], None), DType::Fp16);
        // An explicit format overrides the checkpoint's for every linear layer.
        assert_eq!(s.op_weight_dtype(&ops[2], Some(DType::Int4)), DType::Int4);
    }

    #[test]
    fn unsupported_formats_name_the_field() {
        let e = |q| quant(q).unwrap_err().to_string();
        assert_eq!(
            e(json!({"quant_method": "gptq", "bits": 3})),
            "t.json: field `quantization_config.bits`: 3-bit weights are not supported; expected 4 or 8"
        );
        assert!(e(json!({"bits": 4})).contains("field `quantization_config.quant_method`: missing"));
        let mixed = json!({"quant_method": "compressed-tensors", "config_groups": {
            "a": {"weights": {"num_bits": 8, "type": "float"}},
            "b": {"weights": {"num_bits": 4, "type": "int"}}}});
        assert!(
            e(mixed).contains("field `quantization_config.config_groups.b`: mixes fp8 and int4")
        );
        assert!(
            e(json!({"quant_method": "modelopt", "quant_algo": "MXFP8"})).contains(
                "field `quantization_config.quant_algo`: unsupported ModelOpt algorithm `MXFP8`"
            )
        );
        let e2 = e(json!({"quant_method": "fp8", "weight_block_size": [128]}));
        assert!(
            e2.contains("weight_block_size`: expected [rows, columns]"),
            "{e2}"
        );
    }
}
