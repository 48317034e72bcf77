//! The same inputs and seed give byte-identical outputs.

use crate::util::*;

/// Every file under `dir` (folders walked), by its path relative to `dir`.
fn files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let name = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push((name, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort();
    v
}

#[test]
fn simulate_outputs_are_byte_identical_across_runs() {
    let args = [
        "simulate",
        "--max-requests",
        "300",
        "--output-dir",
        "out",
        "--rate-scale",
        "3",
    ];
    let (a, da) = servesim(&args);
    let (b, db) = servesim(&args);
    ok(&a);
    ok(&b);
    assert_eq!(stdout(&a), stdout(&b));
    let fa = files(&da.path().join("out"));
    let fb = files(&db.path().join("out"));
    let names: Vec<&str> = fa.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "charts/e2e_cdf.svg",
            "charts/itl_cdf.svg",
            "charts/kv_cache_over_time.svg",
            "charts/requests_over_time.svg",
            "charts/throughput_over_time.svg",
            "charts/tpot_cdf.svg",
            "charts/ttft_cdf.svg",
            "config.json",
            "distributions.csv",
            "report.html",
            "requests.csv",
            "summary.json",
            "throughput.csv",
            "timeseries.csv"
        ]
    );
    assert!(fa == fb, "outputs differ between identical runs");
}

#[test]
fn generated_traces_depend_on_the_seed_only() {
    let gen = |seed: &str, out: &str, dir: &std::path::Path| {
        let o = servesim_in(
            dir,
            &[
                "trace",
                "gen",
                "--arrival",
                "gamma",
                "--rate-rps",
                "5",
                "--cv",
                "2",
                "--num-requests",
                "200",
                "--input-len",
                "lognormal:500:1.0",
                "--output-len",
                "uniform:10:300",
                "--seed",
                seed,
                "--output",
                out,
            ],
        );
        ok(&o);
        std::fs::read(dir.join(out)).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let a = gen("7", "a.csv", dir.path());
    let b = gen("7", "b.csv", dir.path());
    let c = gen("8", "c.csv", dir.path());
    assert_eq!(a, b);
    assert_ne!(a, c, "a different seed must change the trace");
}
