//! The run report: `simulate` writes charts/ and report.html; `servesim report` draws
//! them again for run folders, one page comparing several.

use crate::util::*;

/// The figures of a report page and whether it references anything outside itself.
fn figures(page: &str) -> usize {
    assert!(page.starts_with("<!DOCTYPE html>"), "{page:.100}");
    for needle in ["<script", "<link", "src=", "href=", "url(", "@import"] {
        assert!(!page.contains(needle), "the page references `{needle}`");
    }
    let n = page.matches("<figure class=\"chart\"").count();
    assert_eq!(page.matches("<svg").count(), n, "one inline svg per figure");
    n
}

#[test]
fn simulate_writes_the_charts_and_a_self_contained_page() {
    let (o, d) = servesim(&["simulate", "--max-requests", "200", "--output-dir", "out"]);
    ok(&o);
    let out = d.path().join("out");
    let mut charts: Vec<String> = std::fs::read_dir(out.join("charts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    charts.sort();
    assert_eq!(charts.len(), 7, "{charts:?}");
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(figures(&page), 7);
    // The summary table carries the run's numbers.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let completed = summary["completed"].as_u64().unwrap();
    assert!(page.contains(&format!("<td>completed requests</td><td>{completed}</td>")));
    // distributions.csv: the medians are the summary's; throughput.csv: every finished
    // request and every output token (spread over seconds) is counted once.
    let dist = std::fs::read_to_string(out.join("distributions.csv")).unwrap();
    let median = dist
        .lines()
        .find(|l| l.starts_with("ttft_s,0.50000,"))
        .unwrap()
        .rsplit(',')
        .next()
        .unwrap()
        .parse::<f64>()
        .unwrap();
    assert!((median - summary["ttft_s"]["p50"].as_f64().unwrap()).abs() < 1e-9);
    let tp = std::fs::read_to_string(out.join("throughput.csv")).unwrap();
    let (mut done, mut tokens) = (0u64, 0.0);
    for l in tp.lines().skip(1) {
        let c: Vec<&str> = l.split(',').collect();
        done += c[1].parse::<u64>().unwrap();
        tokens += c[2].parse::<f64>().unwrap();
    }
    assert_eq!(done, completed);
    let out_tokens = summary["output_tokens"].as_f64().unwrap();
    assert!(
        (tokens - out_tokens).abs() < 1e-3 * out_tokens.max(1.0),
        "{tokens} vs {out_tokens}"
    );
}

#[test]
fn report_redraws_one_run_and_compares_several() {
    let (a, d) = servesim(&["simulate", "--max-requests", "100", "--output-dir", "a"]);
    ok(&a);
    let b = servesim_in(
        d.path(),
        &[
            "simulate",
            "--max-requests",
            "100",
            "--max-num-seqs",
            "4",
            "--output-dir",
            "b",
        ],
    );
    ok(&b);
    // Redrawing a run folder gives the page simulate wrote.
    let first = std::fs::read(d.path().join("a/report.html")).unwrap();
    let o = servesim_in(d.path(), &["report", "a"]);
    ok(&o);
    assert_eq!(
        std::fs::read(d.path().join("a/report.html")).unwrap(),
        first
    );
    let o = servesim_in(d.path(), &["report", "a", "b", "-o", "both"]);
    ok(&o);
    let page = std::fs::read_to_string(d.path().join("both/report.html")).unwrap();
    assert!(page.contains("servesim comparison: a vs b"));
    assert_eq!(figures(&page), 7);
    // Each chart has one line per run (two for the requests chart).
    let ttft = std::fs::read_to_string(d.path().join("both/charts/ttft_cdf.svg")).unwrap();
    assert!(
        ttft.contains(">\na\n</text>") || ttft.contains(">a</text>"),
        "no legend for a"
    );
    // A folder that is not a run is named.
    let o = servesim_in(d.path(), &["report", "a", "nowhere"]);
    fails_with(&o, &["nowhere", "summary.json"]);
}

/// A run that fails part-way leaves neither its own partial files nor an older run's
/// outputs in the folder; the chart files are the ones a new run clears.
#[test]
fn a_failed_run_leaves_nothing_behind() {
    let (o, d) = servesim(&["simulate", "--max-requests", "50", "--output-dir", "out"]);
    ok(&o);
    let out = d.path().join("out");
    for f in std::fs::read_dir(out.join("charts")).unwrap() {
        let name = f.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            servesim::report::charts::FILES.contains(&name.as_str()),
            "{name}"
        );
    }
    // Rows 1-200 are fine; row 201 is not a number.
    let mut trace = String::from("arrival_time_s,input_tokens,output_tokens\n");
    for i in 0..200 {
        trace.push_str(&format!("{}.0,100,10\n", i));
    }
    trace.push_str("200.0,abc,10\n");
    std::fs::write(d.path().join("bad.csv"), trace).unwrap();
    let o = servesim_in(
        d.path(),
        &["simulate", "--trace", "bad.csv", "--output-dir", "out"],
    );
    fails_with(&o, &["bad.csv:202", "input_tokens"]);
    let left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
