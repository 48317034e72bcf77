//! A fuzzing harness on stable Rust: every parser of user input gets mutated copies of
//! the shipped examples (and of `../shared`'s files where present) and must answer each
//! with a value or an error: no panic, no hang.
//!
//! Parsers: the six trace formats (through `open_trace`, every record read), model
//! `config.json`, hardware device TOML, sweep/plan TOML (parsed and checked into a grid),
//! every `validate` input format (through `validate::open`), and OpenAI request bodies
//! (deserialized and their prompts counted as `serve` does).
//!
//! Cases are deterministic: case `i` of a run mutates with seed `SEED + i`. The number
//! of cases comes from `SERVESIM_FUZZ_CASES` (default 20,000: the bounded CI pass, a few seconds) and
//! the first seed from `SERVESIM_FUZZ_SEED` (default 0). A long run:
//!
//! ```text
//! SERVESIM_FUZZ_CASES=1000000 cargo test --release --test fuzz -- --nocapture
//! ```
//!
//! A case that panics fails the test with its target, seed and input (written to
//! `target/fuzz-failures/`); one that runs over 10 s aborts the process the same way.

mod mutate;
mod targets;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest a single case may take before it counts as a hang.
const HANG_LIMIT: Duration = Duration::from_secs(10);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn failure_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures")
}

#[test]
fn every_parser_answers_mutated_inputs_without_panicking_or_hanging() {
    let cases = env_u64("SERVESIM_FUZZ_CASES", 20_000);
    let first = env_u64("SERVESIM_FUZZ_SEED", 0);
    let targets = targets::all();
    let work = tempfile::tempdir().unwrap();
    // A watchdog: the case in progress and when it started (ms since `start`).
    let start = Instant::now();
    let started_ms = Arc::new(AtomicU64::new(u64::MAX));
    let current = Arc::new(std::sync::Mutex::new(String::new()));
    {
        let (started_ms, current) = (started_ms.clone(), current.clone());
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(500));
            let s = started_ms.load(Ordering::Relaxed);
            if s != u64::MAX
                && start.elapsed().as_millis() as u64 > s + HANG_LIMIT.as_millis() as u64
            {
                eprintln!("HANG (over {HANG_LIMIT:?}): {}", current.lock().unwrap());
                std::process::abort();
            }
        });
    }
    // Quiet the default hook: a caught panic is reported below with its input.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut per_target = vec![(0u64, 0u64); targets.len()];
    let mut failures = Vec::new();
    for i in 0..cases {
        let seed = first + i;
        let mut m = mutate::Mutator::new(seed);
        let t = m.below(targets.len());
        let target = &targets[t];
        let a = m.below(target.seeds.len());
        let b = m.below(target.seeds.len());
        let input = m.mutate(&target.seeds[a], &target.seeds[b]);
        *current.lock().unwrap() = format!("target {} seed {seed}", target.name);
        started_ms.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
        let dir = work.path().join(format!("case-{}", seed % 4));
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (target.run)(&dir, &input)));
        started_ms.store(u64::MAX, Ordering::Relaxed);
        match outcome {
            Ok(accepted) => {
                per_target[t].0 += 1;
                per_target[t].1 += u64::from(accepted);
            }
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                let out = failure_dir().join(format!("{}-{seed}", target.name));
                let _ = std::fs::create_dir_all(failure_dir());
                let _ = std::fs::write(&out, &input);
                failures.push(format!(
                    "{} seed {seed}: {msg} (input: {})",
                    target.name,
                    out.display()
                ));
            }
        }
    }
    std::panic::set_hook(hook);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "fuzz: {cases} cases from seed {first} in {secs:.1} s, {} panics",
        failures.len()
    );
    for (t, (n, ok)) in targets.iter().zip(&per_target) {
        println!(
            "  {:<22} {:>8} cases, {:>7} accepted, {:>8} refused with an error",
            t.name,
            n,
            ok,
            n - ok
        );
    }
    assert!(failures.is_empty(), "panics:\n{}", failures.join("\n"));
}

/// Run configs are read by the binary (`simulate --config`): mutated copies of the
/// shipped examples go through it, a panic (exit status 101) or a run over 30 s fails.
/// One case per 200 of `SERVESIM_FUZZ_CASES` (at least 20).
#[test]
fn run_configs_through_the_binary_never_panic_or_hang() {
    use std::process::{Command, Stdio};
    let cases = (env_u64("SERVESIM_FUZZ_CASES", 20_000) / 200).max(20);
    let first = env_u64("SERVESIM_FUZZ_SEED", 0);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let seeds: Vec<Vec<u8>> = std::fs::read_dir(root.join("examples"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "toml")
                && !p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n.starts_with("sweep") || n.starts_with("plan")
                })
        })
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|t| {
            // Paths in the examples are relative to their folder; the mutated copy
            // lives elsewhere.
            let examples = root.join("examples");
            t.replace("\"../", &format!("\"{}/", root.display()))
                .replace(
                    "\"failures/",
                    &format!("\"{}/failures/", examples.display()),
                )
                .into_bytes()
        })
        .collect();
    assert!(!seeds.is_empty());
    let work = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut accepted = 0;
    for i in 0..cases {
        let seed = first + i;
        let mut m = mutate::Mutator::new(seed);
        let (a, b) = (m.below(seeds.len()), m.below(seeds.len()));
        let input = m.mutate(&seeds[a], &seeds[b]);
        let cfg = work.path().join("run.toml");
        std::fs::write(&cfg, &input).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_servesim"))
            .args(["simulate", "--config"])
            .arg(&cfg)
            .args(["--no-output", "--max-requests", "20", "--format", "json"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stderr = {
            use std::io::Read;
            let mut s = String::new();
            let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut s));
            s
        };
        match status {
            Some(s) if s.code() == Some(101) || stderr.contains("panicked") => {
                let out = failure_dir().join(format!("run-config-{seed}"));
                let _ = std::fs::create_dir_all(failure_dir());
                let _ = std::fs::write(&out, &input);
                failures.push(format!("seed {seed}: {stderr} (input: {})", out.display()));
            }
            Some(s) => accepted += u32::from(s.success()),
            None => failures.push(format!("seed {seed}: still running after 30 s")),
        }
    }
    println!(
        "fuzz: {cases} run configs through the binary, {accepted} accepted, {} failures",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
