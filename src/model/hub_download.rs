//! Fetching a model's `config.json` from the HuggingFace Hub, only when the user allows
//! network access (`--allow-download` or `SERVESIM_ALLOW_DOWNLOAD=1`).
//!
//! The files land in the local hub cache in the `huggingface_hub` layout
//! (`models--org--name/snapshots/<commit>/`, `refs/main`), so the next run finds them
//! offline through [`super::hf_folder::cached_snapshot`]. Only `config.json` and, when
//! the repository has one, ModelOpt's `hf_quant_config.json` are requested, plus, for
//! `servesim serve`, the tokenizer files: never weights or anything else. The transfer is the `hf-hub` crate's.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Where and as whom to download from. The binary builds it from `HF_ENDPOINT` and
/// `HF_TOKEN`; the library never reads the environment for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubDownload {
    /// Base URL of the Hub (`https://huggingface.co`, or a mirror).
    pub endpoint: String,
    /// Access token for gated or private repositories.
    pub token: Option<String>,
}

/// The Hub's own address, used when `HF_ENDPOINT` is not set.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

impl HubDownload {
    /// Downloads from `endpoint` (default [`DEFAULT_ENDPOINT`]) with `token`.
    pub fn new(endpoint: Option<String>, token: Option<String>) -> Self {
        HubDownload {
            endpoint: endpoint
                .filter(|e| !e.trim().is_empty())
                .map(|e| e.trim().trim_end_matches('/').to_owned())
                .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned()),
            token: token.filter(|t| !t.trim().is_empty()),
        }
    }
}

/// The files fetched: the config, then an optional quantization description.
const CONFIG: &str = "config.json";
const MODELOPT_QUANT: &str = "hf_quant_config.json";

/// Fetch `id`'s (`org/name`) config into the hub cache `cache` and return the snapshot
/// folder holding it.
pub fn download_config(id: &str, cache: &Path, hub: &HubDownload) -> Result<PathBuf> {
    download_files(id, cache, hub, CONFIG, &[MODELOPT_QUANT])
}

/// Fetch `id`'s tokenizer (`tokenizer.json`, and `tokenizer_config.json` and
/// `chat_template.jinja` where the repository has them) into the hub cache `cache`
/// and return the snapshot folder holding it (`servesim serve` counts prompts with it).
pub fn download_tokenizer(id: &str, cache: &Path, hub: &HubDownload) -> Result<PathBuf> {
    download_files(
        id,
        cache,
        hub,
        "tokenizer.json",
        &["tokenizer_config.json", "chat_template.jinja"],
    )
}

/// Fetch `required` and whichever of `optional` exist; the snapshot folder.
#[cfg(feature = "hub")]
fn download_files(
    id: &str,
    cache: &Path,
    hub: &HubDownload,
    required: &str,
    optional: &[&str],
) -> Result<PathBuf> {
    use hf_hub::api::sync::ApiBuilder;
    use hf_hub::Cache;

    // Without HF_TOKEN, the token file `huggingface-cli login` wrote beside the cache.
    let mut builder = ApiBuilder::from_cache(Cache::new(cache.to_owned()))
        .with_endpoint(hub.endpoint.clone())
        .with_progress(false);
    if let Some(token) = &hub.token {
        builder = builder.with_token(Some(token.clone()));
    }
    let api = builder
        .build()
        .map_err(|e| Error::Config(format!("cannot set up the HuggingFace Hub client: {e}")))?;
    let repo = api.model(id.to_owned());
    let got = repo
        .download(required)
        .map_err(|e| failed(id, required, hub, e))?;
    for file in optional {
        match repo.download(file) {
            Ok(_) => {}
            Err(e) if status(&e) == Some(404) => {}
            Err(e) => return Err(failed(id, file, hub, e)),
        }
    }
    got.parent()
        .map(Path::to_owned)
        .ok_or_else(|| Error::Config(format!("{}: no snapshot folder", got.display())))
}

/// Without the `hub` feature there is no network client.
#[cfg(not(feature = "hub"))]
fn download_files(
    id: &str,
    _cache: &Path,
    _hub: &HubDownload,
    _required: &str,
    _optional: &[&str],
) -> Result<PathBuf> {
    Err(Error::Config(format!(
        "cannot download `{id}`: this servesim was built without the `hub` feature"
    )))
}

#[cfg(feature = "hub")]
fn status(e: &hf_hub::api::sync::ApiError) -> Option<u16> {
    match e {
        hf_hub::api::sync::ApiError::RequestError(r) => match r.as_ref() {
            ureq::Error::Status(code, _) => Some(*code),
            ureq::Error::Transport(_) => None,
        },
        _ => None,
    }
}

#[cfg(feature = "hub")]
fn failed(id: &str, file: &str, hub: &HubDownload, e: hf_hub::api::sync::ApiError) -> Error {
    let url = format!("{}/{id}/resolve/main/{file}", hub.endpoint);
    let why = match status(&e) {
        Some(401 | 403) if hub.token.is_none() => {
            "the Hub refused access (a gated or private model): set HF_TOKEN to a token \
             that has access"
                .to_owned()
        }
        Some(401 | 403) => "the Hub refused access with the token in HF_TOKEN".to_owned(),
        Some(404) => "no such model (or file) on the Hub".to_owned(),
        _ => e.to_string(),
    };
    Error::Config(format!("downloading {url}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_defaults_and_trims() {
        assert_eq!(HubDownload::new(None, None).endpoint, DEFAULT_ENDPOINT);
        let h = HubDownload::new(Some("http://mirror/ ".into()), Some(" ".into()));
        assert_eq!(h.endpoint, "http://mirror");
        assert_eq!(h.token, None);
    }
}
