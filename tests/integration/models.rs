//! `--model` beyond the shipped catalog: a checkpoint folder and the local HuggingFace
//! hub cache, in `memory`, `estimate` and `simulate`.

use crate::util::*;
use std::path::Path;
use std::process::{Command, Output};

/// Run `servesim args…` in `cwd` with the hub cache at `hub`.
fn servesim_with_cache(cwd: &Path, hub: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_servesim"))
        .args(args)
        .arg("--data-dir")
        .arg(root())
        .env("HF_HUB_CACHE", hub)
        .current_dir(cwd)
        .output()
        .expect("run servesim")
}

/// The rows `servesim args… --format json` prints (run in a fresh folder).
fn json_rows(args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let (o, _d) = servesim(&all);
    ok(&o);
    serde_json::from_str(&stdout(&o)).unwrap()
}

/// A checkpoint folder `dir` with Llama-3.1-8B's config (and ModelOpt's FP8
/// description when `fp8`).
fn checkpoint(dir: &Path, fp8: bool) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(
        root().join("model_configs/meta-llama/Llama-3.1-8B.json"),
        dir.join("config.json"),
    )
    .unwrap();
    if fp8 {
        std::fs::write(
            dir.join("hf_quant_config.json"),
            r#"{"producer": {"name": "modelopt"}, "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8", "exclude_modules": ["lm_head"]}}"#,
        )
        .unwrap();
    }
}

/// A hub cache under `hub` holding `org/name` at revision `rev` (named by refs/main).
fn cached(hub: &Path, org: &str, name: &str, rev: &str) {
    let repo = hub.join(format!("models--{org}--{name}"));
    checkpoint(&repo.join("snapshots").join(rev), false);
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), rev).unwrap();
}

#[test]
fn a_checkpoint_folder_is_a_model() {
    let dir = tempfile::tempdir().unwrap();
    checkpoint(&dir.path().join("my-llama"), false);
    checkpoint(&dir.path().join("my-llama-fp8"), true);
    let o = servesim_in(
        dir.path(),
        &["memory", "--model", "./my-llama", "--hardware", "h100"],
    );
    ok(&o);
    let plain = stdout(&o);
    assert!(
        plain.contains("my-llama") && plain.contains("8.030 B"),
        "{plain}"
    );
    // ModelOpt's hf_quant_config.json makes the linear layers FP8.
    let o = servesim_in(
        dir.path(),
        &["memory", "--model", "my-llama-fp8/", "--hardware", "h100"],
    );
    ok(&o);
    let fp8 = stdout(&o);
    assert!(fp8.contains("fp8"), "{fp8}");
    let o = servesim_in(
        dir.path(),
        &[
            "estimate",
            "--model",
            "./my-llama",
            "--batch-size",
            "2",
            "--input-len",
            "128",
            "--output-len",
            "8",
        ],
    );
    ok(&o);
    assert!(stdout(&o).contains("TPOT"), "{}", stdout(&o));
    // A folder without config.json says so.
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let o = servesim_in(dir.path(), &["memory", "--model", "./empty"]);
    fails_with(&o, &["empty", "config.json"]);
}

#[test]
fn models_in_the_hub_cache_resolve_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path().join("hub");
    cached(&hub, "acme", "Tiny-Llama-8B", "0123abcd");
    let run = |args: &[&str]| servesim_with_cache(dir.path(), &hub, args);
    let o = run(&[
        "memory",
        "--model",
        "acme/Tiny-Llama-8B",
        "--hardware",
        "h100",
    ]);
    ok(&o);
    assert!(stdout(&o).contains("acme/Tiny-Llama-8B"), "{}", stdout(&o));
    let o = run(&[
        "estimate",
        "--model",
        "acme/Tiny-Llama-8B",
        "--batch-size",
        "1",
        "--input-len",
        "64",
        "--output-len",
        "4",
    ]);
    ok(&o);
    let o = run(&[
        "simulate",
        "--model",
        "acme/Tiny-Llama-8B",
        "--max-requests",
        "20",
        "--output-dir",
        "out",
    ]);
    ok(&o);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["completed"], 20);
    // Not in the cache: the unknown-model error names the way out.
    let o = run(&["memory", "--model", "acme/Missing-7B"]);
    fails_with(&o, &["unknown model `acme/Missing-7B`", "--allow-download"]);
}

/// A stand-in for the HuggingFace Hub on loopback: serves `config.json` of `org/name`
/// as the Hub does (`/{org}/{name}/resolve/main/{file}`, a `bytes=0-0` probe answered
/// with `x-repo-commit`, `etag` and `content-range`), 404 for anything else, and 401
/// without the bearer token `token`. Returns its address and the request lines and
/// authorization headers it saw.
fn mock_hub(
    repo: &'static str,
    config: String,
    token: &'static str,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let (mut range, mut auth) = (None, None);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                let (k, v) = line.split_once(':').unwrap_or((&line, ""));
                match k.trim().to_ascii_lowercase().as_str() {
                    "range" => range = Some(v.trim().to_owned()),
                    "authorization" => auth = Some(v.trim().to_owned()),
                    _ => {}
                }
            }
            log.lock().unwrap().push(format!(
                "{} auth={}",
                request.trim(),
                auth.as_deref().unwrap_or("-")
            ));
            let path = request.split_whitespace().nth(1).unwrap_or("").to_owned();
            let wanted = format!("/{repo}/resolve/main/config.json");
            let (status, headers, body): (&str, String, Vec<u8>) =
                if auth.as_deref() != Some(&format!("Bearer {token}")) {
                    ("401 Unauthorized", String::new(), b"gated".to_vec())
                } else if path != wanted {
                    ("404 Not Found", String::new(), b"Entry not found".to_vec())
                } else {
                    let full = config.as_bytes();
                    let start: usize = range
                        .as_deref()
                        .and_then(|r| r.strip_prefix("bytes="))
                        .and_then(|r| r.split('-').next())
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    let end = if range.as_deref() == Some("bytes=0-0") {
                        1
                    } else {
                        full.len()
                    };
                    let headers = format!(
                        "x-repo-commit: 0123456789abcdef0123456789abcdef01234567\r\n\
                         etag: \"cafe0001\"\r\ncontent-range: bytes {start}-{}/{}\r\n",
                        end - 1,
                        full.len()
                    );
                    ("206 Partial Content", headers, full[start..end].to_vec())
                };
            let head = format!(
                "HTTP/1.1 {status}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    (addr, seen)
}

#[test]
fn allow_download_fetches_only_the_config_from_the_hub_and_caches_it() {
    let dir = tempfile::tempdir().unwrap();
    let hf_home = dir.path().join("hf");
    let config =
        std::fs::read_to_string(root().join("model_configs/meta-llama/Llama-3.1-8B.json")).unwrap();
    let (endpoint, seen) = mock_hub("acme/Gated-Llama-8B", config, "sekrit");
    let run = |args: &[&str], token: Option<&str>, allow_env: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_servesim"));
        c.args(args)
            .arg("--data-dir")
            .arg(root())
            .env_remove("HF_HUB_CACHE")
            .env_remove("HF_TOKEN")
            .env_remove("HUGGING_FACE_HUB_TOKEN")
            .env_remove("SERVESIM_ALLOW_DOWNLOAD")
            .env("HF_HOME", &hf_home)
            .env("HF_ENDPOINT", &endpoint)
            .current_dir(dir.path());
        if let Some(t) = token {
            c.env("HF_TOKEN", t);
        }
        if allow_env {
            c.env("SERVESIM_ALLOW_DOWNLOAD", "1");
        }
        c.output().unwrap()
    };
    let memory = [
        "memory",
        "--model",
        "acme/Gated-Llama-8B",
        "--hardware",
        "h100",
    ];
    // Not allowed: nothing is requested.
    fails_with(&run(&memory, Some("sekrit"), false), &["--allow-download"]);
    assert!(seen.lock().unwrap().is_empty());
    // Allowed, no token: the gated model's refusal is explained.
    let mut flagged = memory.to_vec();
    flagged.push("--allow-download");
    fails_with(&run(&flagged, None, false), &["HF_TOKEN", "gated"]);
    // With the token: downloaded, parsed and cached in the hub layout.
    let o = run(&flagged, Some("sekrit"), false);
    ok(&o);
    assert!(stdout(&o).contains("8.030 B"), "{}", stdout(&o));
    let snapshot = hf_home.join(
        "hub/models--acme--Gated-Llama-8B/snapshots/0123456789abcdef0123456789abcdef01234567",
    );
    assert!(snapshot.join("config.json").is_file());
    // Only config.json and hf_quant_config.json were asked for, always with the token.
    let requests = seen.lock().unwrap().clone();
    for r in &requests[1..] {
        assert!(
            r.contains("/resolve/main/config.json ")
                || r.contains("/resolve/main/hf_quant_config.json "),
            "{requests:?}"
        );
    }
    assert!(requests
        .iter()
        .skip(1)
        .all(|r| r.ends_with("auth=Bearer sekrit")));
    // The next run finds it in the cache without asking the Hub (and without the flag).
    let before = requests.len();
    ok(&run(&memory, None, false));
    let o = run(
        &[
            "estimate",
            "--model",
            "acme/Gated-Llama-8B",
            "--batch-size",
            "1",
            "--input-len",
            "64",
            "--output-len",
            "4",
        ],
        None,
        true,
    );
    ok(&o);
    assert_eq!(seen.lock().unwrap().len(), before);
    // A model the Hub does not have.
    fails_with(
        &run(
            &["memory", "--model", "acme/Nope-1B", "--allow-download"],
            Some("sekrit"),
            false,
        ),
        &["acme/Nope-1B/resolve/main/config.json", "no such model"],
    );
}

#[test]
fn list_models_filters_by_family_and_size() {
    let rows = json_rows(&["list", "models", "--family", "qwen3"]);
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"Qwen/Qwen3-8B") && ids.contains(&"Qwen/Qwen3-235B-A22B"));
    assert!(ids.iter().all(|i| i.starts_with("Qwen/Qwen3")), "{ids:?}");
    let rows = json_rows(&["list", "models", "--min-params", "60", "--max-params", "80"]);
    assert!(!rows.is_empty());
    for r in &rows {
        let b = r["params_total"].as_f64().unwrap() / 1e9;
        assert!((60.0..=80.0).contains(&b), "{r}");
    }
    let (o, _d) = servesim(&["list", "models", "--min-params", "5", "--max-params", "1"]);
    fails_with(&o, &["--min-params 5 is larger than --max-params 1"]);
    let (o, _d) = servesim(&["list", "hardware", "--family", "llama"]);
    fails_with(&o, &["apply to `list models` only"]);
}

/// The README's filtered `servesim list models` block is the command's real output.
#[test]
fn readme_list_models_filter_is_real_output() {
    let cmd = "$ servesim list models --family qwen3 --max-params 40\n";
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme.find(cmd).expect("README shows the filtered listing") + cmd.len();
    let end = start + readme[start..].find("\n$ ").unwrap() + 1;
    let (o, _d) = servesim(&["list", "models", "--family", "qwen3", "--max-params", "40"]);
    ok(&o);
    assert_eq!(stdout(&o), &readme[start..end]);
}

#[test]
fn list_hardware_reaches_the_database_tier_and_filters() {
    let rows = json_rows(&["list", "hardware", "--all"]);
    assert!(rows.len() >= 2000, "{}", rows.len());
    let tier = |t: &str| rows.iter().filter(|r| r["tier"] == t).count();
    assert!(tier("curated") >= 30 && tier("database") >= 2000);
    assert!(rows
        .iter()
        .all(|r| !r["source"].as_str().unwrap().is_empty()));
    let rows = json_rows(&[
        "list",
        "hardware",
        "--all",
        "--vendor",
        "nvidia",
        "--min-memory-gib",
        "100",
    ]);
    assert!(!rows.is_empty());
    for r in &rows {
        assert_eq!(r["vendor"], "NVIDIA");
        assert!(
            r["memory_gb"].as_f64().unwrap() * 1e9 / 1073741824.0 >= 100.0,
            "{r}"
        );
    }
    let rows = json_rows(&["list", "hardware", "--type", "tpu"]);
    assert_eq!(rows.len(), 4);
    let rows = json_rows(&["list", "hardware", "--type", "cpu"]);
    assert!(rows.len() >= 4, "{}", rows.len());
    let (o, _d) = servesim(&["list", "models", "--all"]);
    fails_with(&o, &["apply to `list hardware` only"]);
}

/// Devices people ask about that only the database knows resolve by name in every
/// command; an ambiguous name lists the candidates.
#[test]
fn database_devices_resolve_by_name() {
    let (o, _d) = servesim(&[
        "memory",
        "--hardware",
        "rtx 5080",
        "--max-model-len",
        "4096",
        "--model",
        "llama-3.2-3b",
    ]);
    ok(&o);
    assert!(stdout(&o).contains("GeForce RTX 5080"), "{}", stdout(&o));
    let (o, _d) = servesim(&[
        "estimate",
        "--hardware",
        "a800 pcie 80 gb",
        "--max-model-len",
        "4096",
        "--batch-size",
        "2",
        "--input-len",
        "256",
        "--output-len",
        "8",
    ]);
    ok(&o);
    assert!(
        stdout(&o).contains("on 1 × A800 PCIe 80 GB"),
        "{}",
        stdout(&o)
    );
    let (o, _d) = servesim(&["memory", "--hardware", "a800"]);
    fails_with(&o, &["`a800` is ambiguous", "A800 SXM4 80 GB"]);
}

/// `memory --min-gpus --catalog all` searches the database tier too.
#[test]
fn memory_searches_the_whole_catalog() {
    let rows = json_rows(&[
        "memory",
        "--model",
        "meta-llama/Llama-3.1-70B",
        "--max-model-len",
        "8192",
        "--min-gpus",
        "--catalog",
        "all",
    ]);
    // Every device with a 16-bit rate (the 660 fixed-function parts have none).
    assert!(rows.len() >= 1800, "{}", rows.len());
    let h800 = rows.iter().find(|r| r["hardware"] == "H800 SXM5").unwrap();
    assert_eq!(h800["min_gpus"], 2);
}
