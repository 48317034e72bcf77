//! The GenZ reader: units and name variants, JSON lines, grouping, replay modes and
//! errors naming file, line and column.

use super::*;

fn write(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    (dir, p)
}

#[test]
fn reads_units_and_variants_as_one_burst() {
    let (_d, p) = write(
        "genz.csv",
        "request_id,Prompt_Tokens,completion_tokens,TTFT_ms,tpot_ms,e2e_latency_s\n\
         7,100,11,50,10,0.15\n\
         8,200,1,80,0,0.08\n\
         9,300,5,20,30,0.5\n",
    );
    let t = read(&p, &ReplayOptions::default()).unwrap();
    assert_eq!(t.groups.len(), 1);
    let g = &t.groups[0];
    assert_eq!(g.key, GenzKey::default());
    let r = &g.run;
    assert_eq!(r.format, RunFormat::Genz);
    assert_eq!(r.arrivals, ArrivalMode::AllAtOnce);
    assert_eq!(r.max_concurrency, None);
    let ids: Vec<u64> = r.requests.iter().map(|q| q.id).collect();
    assert_eq!(ids, [0, 1, 2]);
    let a = &r.requests[0];
    assert_eq!((a.input_tokens, a.output_tokens), (100, 11));
    assert!((a.ttft_s - 0.05).abs() < 1e-12 && (a.e2e_s - 0.15).abs() < 1e-12);
    assert!((a.tpot_s() - 0.01).abs() < 1e-12);
    // Row 3: 20 ms + 4 × 30 ms = 140 ms, not 500: counted, E2E kept.
    assert!(
        r.notes[0].starts_with("1 of 3 rows have a TPOT more than 2 % off"),
        "{:?}",
        r.notes
    );
    assert!(
        r.notes[1].contains("TTFT in ms, TPOT in ms, E2E in s"),
        "{:?}",
        r.notes
    );
    assert!(
        r.notes[2].starts_with("replay mode: burst"),
        "{:?}",
        r.notes
    );
}

#[test]
fn tpot_alone_gives_e2e_and_json_lines_read_the_same() {
    let (_d, p) = write(
        "genz.jsonl",
        "{\"input_tokens\": 10, \"output_tokens\": 3, \"ttft\": 0.1, \"tpot\": 0.02, \"concurrency\": 2}\n\
         {\"input_tokens\": 12, \"output_tokens\": 4, \"ttft\": 0.2, \"tpot\": 0.03, \"concurrency\": 2}\n",
    );
    assert!(looks_like_genz_json_lines(&p));
    let t = read(&p, &ReplayOptions::default()).unwrap();
    let r = &t.groups[0].run;
    assert!((r.requests[0].e2e_s - 0.14).abs() < 1e-12);
    assert!((r.requests[1].e2e_s - 0.29).abs() < 1e-12);
    // Closed loop from the column.
    assert_eq!(r.max_concurrency, Some(2));
    assert_eq!(r.arrivals, ArrivalMode::AllAtOnce);
    let mode = r
        .notes
        .iter()
        .find(|n| n.starts_with("replay mode"))
        .unwrap();
    assert!(
        mode.contains("closed loop at concurrency 2 (from the file's columns)"),
        "{mode}"
    );
    // An LLMServingSim file is not taken for one.
    let (_e, q) = write(
        "requests.jsonl",
        "{\"queued_ts\": 1, \"first_token_ts\": 2, \"last_token_ts\": 3, \"input_toks\": 4, \"output_toks\": 5, \"ttft\": 1, \"e2e\": 2}\n",
    );
    assert!(!looks_like_genz_json_lines(&q));
}

#[test]
fn configurations_group_and_flags_choose_the_replay() {
    let text = "model,hardware,tp,request_rate,concurrency,input_tokens,output_tokens,ttft,e2e\n\
                meta-llama/Llama-3.1-8B,h100,1,inf,4,10,2,0.1,0.2\n\
                meta-llama/Llama-3.1-8B,h100,1,2.5,,10,2,0.1,0.2\n\
                meta-llama/Llama-3.1-8B,h100,1,inf,4,10,2,0.1,0.3\n\
                meta-llama/Llama-3.1-8B,a100,2,inf,,10,2,0.1,0.2\n";
    let (_d, p) = write("mixed.csv", text);
    let t = read(&p, &ReplayOptions::default()).unwrap();
    let slugs: Vec<String> = t.groups.iter().map(|g| g.key.slug()).collect();
    assert_eq!(
        slugs,
        [
            "llama-3.1-8b_h100_tp1_c4_rateinf",
            "llama-3.1-8b_h100_tp1_rate2.5",
            "llama-3.1-8b_a100_tp2_rateinf"
        ]
    );
    let runs: Vec<&MeasuredRun> = t.groups.iter().map(|g| &g.run).collect();
    assert_eq!(runs[0].requests.len(), 2);
    assert_eq!(runs[0].requests[1].id, 1);
    assert_eq!(runs[0].max_concurrency, Some(4));
    assert_eq!(
        runs[1].arrivals,
        ArrivalMode::Regenerated {
            seed: 0,
            request_rate_rps: Some(2.5)
        }
    );
    assert_eq!(runs[2].arrivals, ArrivalMode::AllAtOnce);
    assert_eq!(runs[2].max_concurrency, None);
    assert_eq!(runs[2].hints.hardware.as_deref(), Some("a100"));
    assert_eq!(runs[2].hints.tensor_parallel_size, Some(2));
    assert_eq!(
        runs[0].hints.model.as_deref(),
        Some("meta-llama/Llama-3.1-8B")
    );

    // A flag replaces the columns for every group.
    let flags = ReplayOptions {
        seed: 3,
        concurrency: None,
        request_rate: Some(10.0),
    };
    let t = read(&p, &flags).unwrap();
    for g in &t.groups {
        let r = &g.run;
        assert!(matches!(
            r.arrivals,
            ArrivalMode::Regenerated { seed: 3, .. }
        ));
        assert_eq!(r.max_concurrency, None);
        let first = r.requests[0].arrival_s;
        assert_eq!(first, 0.0);
        assert!(r.requests.iter().skip(1).all(|q| q.arrival_s > 0.0));
        assert!(r
            .notes
            .iter()
            .any(|n| n.contains("10 req/s (given on the command line)")));
    }
}

#[test]
fn malformed_rows_name_file_line_and_column() {
    let head = "input_tokens,output_tokens,ttft_s,tpot_s,concurrency,request_rate\n";
    let good = "10,3,0.1,0.01,,\n";
    let cases = [
        (
            "10,3,abc,0.01,,\n",
            ":3: field `ttft_s`: not a finite number: `abc`",
        ),
        (
            "10,0,0.1,0.01,,\n",
            ":3: field `output_tokens`: must be a whole number ≥ 1, got 0",
        ),
        (
            "10,3,-0.1,0.01,,\n",
            ":3: field `ttft_s`: must not be negative, got -0.1",
        ),
        (
            "10,3,0.1,0.01,0,\n",
            ":3: field `concurrency`: must be a whole number ≥ 1, got 0",
        ),
        (
            "10,3,0.1,0.01,,fast\n",
            ":3: field `request_rate`: expected `inf` or a positive rate, got `fast`",
        ),
        (
            "10,3,0.1\n",
            ":3: field `request_rate`: missing value: the row has 3 fields, the header 6",
        ),
    ];
    for (row, want) in cases {
        let (_d, p) = write("g.csv", &format!("{head}{good}{row}"));
        let e = read(&p, &ReplayOptions::default()).unwrap_err().to_string();
        assert!(e.contains(&format!("g.csv{want}")), "{e}\nwanted {want}");
    }
    let (_d, p) = write(
        "g.csv",
        "input_tokens,output_tokens,ttft,e2e\n10,3,0.2,0.1\n",
    );
    let e = read(&p, &ReplayOptions::default()).unwrap_err().to_string();
    assert!(
        e.contains("g.csv:2: field `e2e`: 0.1 s is less than the TTFT 0.2 s"),
        "{e}"
    );
    let (_d, p) = write("g.csv", "input_tokens,output_tokens,ttft\n10,3,0.2\n");
    let e = read(&p, &ReplayOptions::default()).unwrap_err().to_string();
    assert!(e.contains("g.csv:1: field `tpot`: missing column"), "{e}");
    let (_d, p) = write(
        "g.jsonl",
        "{\"input_tokens\": 1, \"output_tokens\": 2, \"ttft\": 0.1, \"e2e\": \"x\"}\n",
    );
    let e = read(&p, &ReplayOptions::default()).unwrap_err().to_string();
    assert!(
        e.contains("g.jsonl:1: field `e2e`: not a finite number: `x`"),
        "{e}"
    );
}
