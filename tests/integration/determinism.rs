//! The same inputs and seed give byte-identical outputs.

use crate::util::*;

fn files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
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
            "config.json",
            "requests.csv",
            "summary.json",
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
