//! Reader, detection and transformation tests (each format from a temporary file).

use super::*;
use proptest::prelude::*;
use std::io::Write;

/// A temporary file named `name` holding `text` (kept alive by the returned dir).
fn file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    (dir, path)
}

fn read_all(path: &Path) -> Result<Vec<Request>> {
    open_trace(path, &TraceOptions::default())?.collect()
}

/// The error message of reading `text` as file `name`, with the temp dir replaced by `DIR`.
fn read_err(name: &str, text: &str) -> String {
    let (dir, path) = file(name, text);
    let e = match read_all(&path) {
        Ok(v) => panic!("expected an error, read {v:?}"),
        Err(e) => e,
    };
    e.to_string()
        .replace(&dir.path().display().to_string(), "DIR")
}

fn secs(s: f64) -> SimTime {
    SimTime::from_secs_f64(s)
}

#[test]
fn native_minimal_and_any_column_order() {
    let (_d, p) = file(
        "t.csv",
        "arrival_time_s,input_tokens,output_tokens\n0,10,5\n0.25,20,1\n",
    );
    let r = read_all(&p).unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0], Request::new(0, SimTime::ZERO, 10, 5));
    assert_eq!(r[1], Request::new(1, secs(0.25), 20, 1));

    let (_d, p) = file(
        "t.csv",
        "note,Output_Tokens, input_tokens ,request_id,arrival_time_s,session_id,prefix_hash_ids\n\
         x,5,40,17,1.5,3,1 2 3\n\
         y,6,4,18,1.5,,\n",
    );
    let r = read_all(&p).unwrap();
    assert_eq!(
        r[0],
        Request {
            id: 17,
            arrival: secs(1.5),
            input_tokens: 40,
            output_tokens: 5,
            session_id: Some(3),
            prefix_hash_ids: vec![1, 2, 3],
            hash_block_tokens: DEFAULT_HASH_BLOCK_TOKENS,
        }
    );
    assert_eq!(r[1].session_id, None);
    assert!(r[1].prefix_hash_ids.is_empty());
    assert_eq!(
        open_trace(&p, &TraceOptions::default()).unwrap().format(),
        Some(TraceFormat::Native)
    );
}

#[test]
fn native_hash_block_size_from_column_or_option() {
    let text = "arrival_time_s,input_tokens,output_tokens,prefix_hash_ids,hash_block_tokens\n\
                0,1024,1,7 8,512\n0,64,1,1 2 3 4,\n";
    let (_d, p) = file("t.csv", text);
    let r = read_all(&p).unwrap();
    assert_eq!(r[0].hash_block_tokens, 512);
    assert_eq!(r[1].hash_block_tokens, 16);
    let opts = TraceOptions {
        native_hash_block_tokens: 32,
        ..TraceOptions::default()
    };
    // 4 hashes of 32 tokens do not fit a 64-token prompt.
    let e = open_trace(&p, &opts)
        .unwrap()
        .collect::<Result<Vec<_>>>()
        .unwrap_err();
    assert!(e.to_string().ends_with(
        ":3: field `prefix_hash_ids`: 4 hash ids but the 64-token prompt has only 2 block(s) of 32 tokens"
    ), "{e}");
}

#[test]
fn azure_offsets_from_first_row_across_midnight() {
    let (_d, p) = file(
        "az.csv",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n\
         2023-12-31 23:59:59.5000000,100,10\n\
         2023-12-31 23:59:59.5000001,200,20\n\
         2024-01-01 00:00:01.25,300,30\n",
    );
    let r = read_all(&p).unwrap();
    assert_eq!(
        open_trace(&p, &TraceOptions::default()).unwrap().format(),
        Some(TraceFormat::Azure2023)
    );
    assert_eq!(r[0].arrival, SimTime::ZERO);
    assert_eq!(r[1].arrival, SimTime::from_nanos(100));
    assert_eq!(r[2].arrival, SimTime::from_nanos(1_750_000_000));
    assert_eq!(
        (r[2].id, r[2].input_tokens, r[2].output_tokens),
        (2, 300, 30)
    );
}

#[test]
fn mooncake_csv_and_jsonl() {
    let (_d, p) = file(
        "m.csv",
        "timestamp_ms,input_tokens,output_tokens,hash_ids\n0,600,5,0 1\n1500,512,7,0\n",
    );
    let r = read_all(&p).unwrap();
    assert_eq!(r[1].arrival, secs(1.5));
    assert_eq!(r[0].prefix_hash_ids, [0, 1]);
    assert_eq!(r[0].hash_block_tokens, MOONCAKE_HASH_BLOCK_TOKENS);

    let (_d, pj) = file(
        "m.jsonl",
        "{\"timestamp\": 0, \"input_length\": 600, \"output_length\": 5, \"hash_ids\": [0, 1]}\n\n\
         {\"timestamp\": 1500, \"input_length\": 512, \"output_length\": 7, \"hash_ids\": [0]}\n",
    );
    assert_eq!(
        TraceFormat::detect(&pj).unwrap(),
        TraceFormat::MooncakeJsonl
    );
    assert_eq!(read_all(&pj).unwrap(), r);
}

#[test]
fn llmservingsim_jsonl() {
    let (_d, p) = file(
        "requests.jsonl",
        "{\"request_id\": \"bench-0\", \"input_toks\": 2358, \"output_toks\": 531, \"arrival_time\": 1787267980.08, \"queued_ts\": 27536.660701067}\n\
         {\"request_id\": \"bench-1\", \"input_toks\": 1034, \"output_toks\": 769, \"arrival_time\": 1787267980.34, \"queued_ts\": 27537.047603549}\n",
    );
    let r = read_all(&p).unwrap();
    assert_eq!(r[0].arrival, SimTime::ZERO);
    // 27537.047603549 - 27536.660701067 = 0.386902482 s, to within f64 rounding.
    assert!(
        r[1].arrival.as_nanos().abs_diff(386_902_482) <= 2,
        "{:?}",
        r[1].arrival
    );
    assert_eq!(
        (r[1].id, r[1].input_tokens, r[1].output_tokens),
        (1, 1034, 769)
    );
}

#[test]
fn llmservingsim_rows_slightly_out_of_order_are_sorted() {
    // Data-parallel engines queue requests up to about a millisecond out of file order.
    let row = |q: f64, i: u32| {
        format!("{{\"input_toks\": {i}, \"output_toks\": 1, \"queued_ts\": {q}}}\n")
    };
    let text = [
        row(10.0, 1),
        row(10.0006, 2),
        row(10.0002, 3),
        row(9.9999, 4),
        row(12.0, 5),
    ]
    .concat();
    let (_d, p) = file("requests.jsonl", &text);
    let r = read_all(&p).unwrap();
    let got: Vec<(u64, u32, u64)> = r
        .iter()
        .map(|r| (r.id, r.input_tokens, r.arrival.as_nanos()))
        .collect();
    assert_eq!(
        got,
        [
            (3, 4, 0),
            (0, 1, 100_000),
            (2, 3, 300_000),
            (1, 2, 700_000),
            (4, 5, 2_000_100_000)
        ]
    );
}

#[test]
fn vllm_json_regenerates_arrivals_from_rate_and_seed() {
    let json = r#"{"date": "20250101-000000", "backend": "vllm", "request_rate": 4.0,
        "burstiness": 1.0, "max_concurrency": null,
        "input_lens": [100, 200, 300, 400], "output_lens": [10, 20, 0, 40],
        "errors": ["", "", "timeout", ""]}"#;
    let (_d, p) = file("run.json", json);
    let reader = open_trace(&p, &TraceOptions::default()).unwrap();
    assert_eq!(reader.format(), Some(TraceFormat::VllmBenchJson));
    assert_eq!(reader.max_concurrency(), None);
    let r: Vec<Request> = reader.collect::<Result<_>>().unwrap();
    // The failed request (index 2) is skipped; ids are positions in the lists.
    assert_eq!(r.iter().map(|r| r.id).collect::<Vec<_>>(), [0, 1, 3]);
    assert_eq!(r[0].arrival, SimTime::ZERO);
    // Same arrivals as the Poisson generator with the same seed (positions 0, 1, 3).
    let mut s = synth::ArrivalSampler::new(&ArrivalProcess::Poisson { rate_rps: 4.0 }, 0);
    let gen: Vec<u64> = (0..4).map(|_| s.next_nanos().unwrap()).collect();
    assert_eq!(r[1].arrival.as_nanos(), gen[1]);
    assert_eq!(r[2].arrival.as_nanos(), gen[3]);
    // Another seed, other arrivals.
    let opts = TraceOptions {
        seed: 1,
        ..TraceOptions::default()
    };
    let r1: Vec<Request> = open_trace(&p, &opts)
        .unwrap()
        .collect::<Result<_>>()
        .unwrap();
    assert_ne!(r1[1].arrival, r[1].arrival);
}

#[test]
fn vllm_json_inf_rate_times_and_concurrency() {
    let (_d, p) = file(
        "run.json",
        r#"{"request_rate": "inf", "max_concurrency": 8, "input_lens": [5, 6], "output_lens": [1, 2]}"#,
    );
    let reader = open_trace(&p, &TraceOptions::default()).unwrap();
    assert_eq!(reader.max_concurrency(), Some(8));
    let r: Vec<Request> = reader.collect::<Result<_>>().unwrap();
    assert!(r.iter().all(|r| r.arrival == SimTime::ZERO));

    // Per-request send times win over the rate; the requests come out in time order.
    let (_d, p) = file(
        "run.json",
        "{\n  \"request_rate\": 2,\n  \"input_lens\": [5, 6, 7],\n  \"output_lens\": [1, 2, 3],\n  \"start_times\": [100.5, 100.0, 101.0]\n}\n",
    );
    let r: Vec<Request> = read_all(&p).unwrap();
    assert_eq!(r.iter().map(|r| r.id).collect::<Vec<_>>(), [1, 0, 2]);
    assert_eq!(r[1].arrival, secs(0.5));
    assert_eq!(r[2].arrival, secs(1.0));
}

#[test]
fn vllm_json_errors_name_the_field() {
    assert_eq!(
        read_err("r.json", r#"{"request_rate": 1, "input_lens": [5]}"#),
        "DIR/r.json: field `output_lens`: missing: save the result with per-request details (vLLM: `--save-result --save-detailed`; SGLang: `--output-details`)"
    );
    assert_eq!(
        read_err(
            "r.json",
            r#"{"request_rate": 1, "input_lens": [5, -1], "output_lens": [1, 1]}"#
        ),
        "DIR/r.json: field `input_lens[1]`: negative: `-1`"
    );
    assert_eq!(
        read_err(
            "r.json",
            r#"{"request_rate": 1, "input_lens": [5], "output_lens": [0]}"#
        ),
        "DIR/r.json: field `output_lens[0]`: must be at least 1, got 0"
    );
    assert_eq!(
        read_err(
            "r.json",
            r#"{"request_rate": -2, "input_lens": [5], "output_lens": [1]}"#
        ),
        "DIR/r.json: field `request_rate`: must be positive, got -2"
    );
    assert!(read_err("r.json", "{\"input_lens\": [1,\n").starts_with("DIR/r.json:2: invalid JSON"));
}

#[test]
fn detection() {
    let cases = [
        (
            "a.csv",
            "arrival_time_s,input_tokens,output_tokens\n",
            TraceFormat::Native,
        ),
        (
            "a.txt",
            "\u{feff}TIMESTAMP,ContextTokens,GeneratedTokens\n",
            TraceFormat::Azure2023,
        ),
        (
            "a",
            "timestamp_ms,input_tokens,output_tokens,hash_ids\n",
            TraceFormat::Mooncake,
        ),
        (
            "a.jsonl",
            "{\"input_toks\": 1, \"output_toks\": 1, \"queued_ts\": 0}\n",
            TraceFormat::LlmServingSimJsonl,
        ),
        (
            "a.jsonl",
            "{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 1}\n",
            TraceFormat::MooncakeJsonl,
        ),
        ("a.json", "[]", TraceFormat::VllmBenchJson),
        (
            "a.out",
            "{\n \"input_lens\": []\n}\n",
            TraceFormat::VllmBenchJson,
        ),
        (
            "a.out",
            "{\"input_lens\": [], \"output_lens\": []}\n",
            TraceFormat::VllmBenchJson,
        ),
    ];
    for (name, text, want) in cases {
        let (_d, p) = file(name, text);
        assert_eq!(TraceFormat::detect(&p).unwrap(), want, "{name}: {text:?}");
    }
    assert_eq!(
        read_err("x.csv", "time,in,out\n1,2,3\n"),
        format!("DIR/x.csv:1: unrecognised trace header `time,in,out`: {EXPECTED_FORMATS}")
    );
    assert!(read_err("x.csv", "").starts_with("DIR/x.csv:1: empty first line"));
    assert!(read_err("x.jsonl", "{\"a\": 1}\n")
        .starts_with("DIR/x.jsonl:1: a JSON object with none of the keys"));
    let e = open_trace(Path::new("/no/such/trace.csv"), &TraceOptions::default()).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
}

#[test]
fn header_only_is_an_empty_trace() {
    let (_d, p) = file("t.csv", "arrival_time_s,input_tokens,output_tokens\n");
    assert!(read_all(&p).unwrap().is_empty());
}

#[test]
fn malformed_rows_name_file_line_and_field() {
    let h = "arrival_time_s,input_tokens,output_tokens\n";
    let cases = [
        (format!("{h}0,10,5\n0.5,abc,5\n"), "DIR/t.csv:3: field `input_tokens`: not a non-negative integer: `abc`"),
        (format!("{h}0,10,-5\n"), "DIR/t.csv:2: field `output_tokens`: negative: `-5`"),
        (format!("{h}0,10,0\n"), "DIR/t.csv:2: field `output_tokens`: must be at least 1, got 0"),
        (format!("{h}0,0,3\n"), "DIR/t.csv:2: field `input_tokens`: must be at least 1, got 0"),
        (format!("{h}-1,1,3\n"), "DIR/t.csv:2: field `arrival_time_s`: negative: `-1`"),
        (format!("{h}soon,1,3\n"), "DIR/t.csv:2: field `arrival_time_s`: not a number: `soon`"),
        (format!("{h}0,1\n"), "DIR/t.csv:2: field `output_tokens`: missing: the row has 2 fields but the header has 3"),
        (format!("{h}0,1,2,3\n"), "DIR/t.csv:2: the row has 4 fields but the header has 3"),
        (format!("{h}0,1,99999999999\n"), "DIR/t.csv:2: field `output_tokens`: too large: `99999999999` (at most 4294967295)"),
        (
            format!("{h}0,1,1\n2,1,1\n\n1.5,1,1\n"),
            "DIR/t.csv:5: field `arrival_time_s`: arrival at 1.500000000 s is earlier than the previous request's 2.000000000 s (line 3); arrivals must be non-decreasing: sort the file by arrival time",
        ),
        ("input_tokens,output_tokens,arrival_time_s,arrival_time_s\n".into(), "DIR/t.csv:1: field `arrival_time_s`: column appears more than once in the header"),
        ("arrival_time_s,input_tokens\n".into(), "DIR/t.csv:1: field `output_tokens`: required column missing from the native header `arrival_time_s,input_tokens`"),
    ];
    for (text, want) in cases {
        assert_eq!(read_err("t.csv", &text), want, "{text:?}");
    }
    // Azure, Mooncake and JSONL name their own columns.
    assert_eq!(
        read_err("a.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,1,1\n2023-11-16 18:17:02,1,1\n"),
        "DIR/a.csv:3: field `TIMESTAMP`: `2023-11-16 18:17:02` is earlier than the first row's timestamp; arrivals must be non-decreasing: sort the file by arrival time"
    );
    assert_eq!(
        read_err("a.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-02-30 00:00:00,1,1\n"),
        "DIR/a.csv:2: field `TIMESTAMP`: day out of range in timestamp `2023-02-30 00:00:00` (expected `YYYY-MM-DD HH:MM:SS.fffffff`)"
    );
    assert_eq!(
        read_err("m.csv", "timestamp_ms,input_tokens,output_tokens,hash_ids\n0,512,1,0 1\n"),
        "DIR/m.csv:2: field `hash_ids`: 2 hash ids but the 512-token prompt has only 1 block(s) of 512 tokens"
    );
    assert_eq!(
        read_err(
            "m.csv",
            "timestamp_ms,input_tokens,output_tokens,hash_ids\n0,512,1,0 x\n"
        ),
        "DIR/m.csv:2: field `hash_ids`: item 2: not a non-negative integer: `x`"
    );
    assert_eq!(
        read_err("r.jsonl", "{\"input_toks\": 1, \"output_toks\": 1, \"queued_ts\": 5}\n{\"input_toks\": 1, \"queued_ts\": 6}\n"),
        "DIR/r.jsonl:2: field `output_toks`: missing"
    );
    assert_eq!(
        read_err("r.jsonl", "{\"input_toks\": 1, \"output_toks\": 1, \"queued_ts\": 5}\n{\"input_toks\": 1.5, \"output_toks\": 1, \"queued_ts\": 6}\n"),
        "DIR/r.jsonl:2: field `input_toks`: not a non-negative integer: `1.5`"
    );
    assert_eq!(
        read_err("r.jsonl", "{\"input_toks\": 1, \"output_toks\": 1, \"queued_ts\": 5}\n{\"input_toks\": 1, \"output_toks\": 1, \"queued_ts\": 7}\n{\"input_toks\": 1, \"output_toks\": 1, \"queued_ts\": 4.5}\n"),
        "DIR/r.jsonl:3: field `queued_ts`: 4.5 is 0.500000 s earlier than line 1's, more than the 1 s window this reader sorts within; sort the file by queued_ts"
    );
    assert_eq!(
        read_err("m.jsonl", "{\"timestamp\": 5, \"input_length\": 1, \"output_length\": 1}\n{\"timestamp\": 4, \"input_length\": 1, \"output_length\": 1}\n"),
        "DIR/m.jsonl:2: field `timestamp`: arrival at 0.004000000 s is earlier than the previous request's 0.005000000 s (line 1); arrivals must be non-decreasing: sort the file by arrival time"
    );
    assert_eq!(
        read_err(
            "r.jsonl",
            "{\"input_toks\": 1, \"output_toks\": 1, \"queued_ts\": 5}\nnot json\n"
        ),
        "DIR/r.jsonl:2: invalid JSON: expected ident at line 1 column 2"
    );
}

#[test]
fn errors_end_the_stream() {
    let (_d, p) = file(
        "t.csv",
        "arrival_time_s,input_tokens,output_tokens\n0,1,1\n0,x,1\n0,1,1\n",
    );
    let items: Vec<Result<Request>> = open_trace(&p, &TraceOptions::default()).unwrap().collect();
    assert_eq!(items.len(), 2);
    assert!(items[0].is_ok() && items[1].is_err());
}

fn ramp(n: u64) -> impl Iterator<Item = Result<Request>> + Send + 'static {
    (0..n).map(|i| Ok(Request::new(i, secs(i as f64), 10, 10)))
}

fn arrivals(opts: &TraceOptions, n: u64) -> Vec<(u64, f64)> {
    TraceReader::from_requests(ramp(n), opts)
        .unwrap()
        .map(|r| r.map(|r| (r.id, r.arrival.as_secs_f64())))
        .collect::<Result<_>>()
        .unwrap()
}

#[test]
fn transformations() {
    let o = |f: fn(&mut TraceOptions)| {
        let mut o = TraceOptions::default();
        f(&mut o);
        o
    };
    assert_eq!(
        arrivals(&o(|o| o.time_scale = 2.0), 3),
        [(0, 0.0), (1, 2.0), (2, 4.0)]
    );
    assert_eq!(
        arrivals(&o(|o| o.rate_scale = 4.0), 3),
        [(0, 0.0), (1, 0.25), (2, 0.5)]
    );
    assert_eq!(
        arrivals(&o(|o| o.max_requests = Some(2)), 10),
        [(0, 0.0), (1, 1.0)]
    );
    assert_eq!(arrivals(&o(|o| o.max_requests = Some(0)), 10), []);
    assert_eq!(
        arrivals(&o(|o| o.time_window = Some((2.5, 5.0))), 10),
        [(3, 0.5), (4, 1.5)]
    );
    // Window in trace time, then scaling, then the cap.
    let all = o(|o| {
        o.time_window = Some((2.0, f64::INFINITY));
        o.rate_scale = 2.0;
        o.max_requests = Some(3);
    });
    assert_eq!(arrivals(&all, 10), [(2, 0.0), (3, 0.5), (4, 1.0)]);
}

#[test]
fn window_stops_reading_at_its_end() {
    // The source errors after 5 requests; a window ending before that never reaches it.
    let src = ramp(5).chain(std::iter::once(Err(Error::Config("unreachable".into()))));
    let opts = TraceOptions {
        time_window: Some((1.0, 3.0)),
        ..TraceOptions::default()
    };
    let got: Vec<_> = TraceReader::from_requests(src, &opts)
        .unwrap()
        .collect::<Result<_>>()
        .unwrap();
    assert_eq!(got.len(), 2);
}

#[test]
fn options_are_validated() {
    let bad = [
        TraceOptions {
            time_scale: 0.0,
            ..TraceOptions::default()
        },
        TraceOptions {
            rate_scale: f64::NAN,
            ..TraceOptions::default()
        },
        TraceOptions {
            time_scale: f64::INFINITY,
            ..TraceOptions::default()
        },
        TraceOptions {
            time_window: Some((5.0, 5.0)),
            ..TraceOptions::default()
        },
        TraceOptions {
            time_window: Some((-1.0, 5.0)),
            ..TraceOptions::default()
        },
        TraceOptions {
            native_hash_block_tokens: 0,
            ..TraceOptions::default()
        },
    ];
    for o in bad {
        assert!(o.validate().is_err(), "{o:?}");
        assert!(TraceReader::from_requests(ramp(1), &o).is_err());
    }
    let toml_text = "time_scale = 2.0\nmax_requests = 10\ntime_window = [60.0, 120.0]\n";
    let o: TraceOptions = toml::from_str(toml_text).unwrap();
    assert_eq!(o.max_requests, Some(10));
    assert_eq!(o.time_window, Some((60.0, 120.0)));
    assert_eq!(o.rate_scale, 1.0);
}

#[test]
fn native_writer_round_trips() {
    let reqs = vec![
        Request::new(3, SimTime::from_nanos(1), 10, 2),
        Request {
            id: 4,
            arrival: SimTime::from_nanos(12_000_000_001),
            input_tokens: 600,
            output_tokens: 1,
            session_id: Some(9),
            prefix_hash_ids: vec![5, 6],
            hash_block_tokens: 512,
        },
    ];
    let mut w = NativeWriter::new(Vec::new(), true);
    for r in &reqs {
        w.write(r).unwrap();
    }
    let text = String::from_utf8(w.finish().unwrap()).unwrap();
    assert_eq!(
        text,
        "request_id,arrival_time_s,input_tokens,output_tokens,session_id,prefix_hash_ids,hash_block_tokens\n\
         3,0.000000001,10,2,,,16\n\
         4,12.000000001,600,1,9,5 6,512\n"
    );
    let (_d, p) = file("w.csv", &text);
    assert_eq!(read_all(&p).unwrap(), reqs);
    // An empty trace still gets its header.
    let text = String::from_utf8(NativeWriter::new(Vec::new(), false).finish().unwrap()).unwrap();
    assert_eq!(
        text,
        "request_id,arrival_time_s,input_tokens,output_tokens\n"
    );
}

fn arb_request() -> impl Strategy<Value = (u64, u32, u32, Option<u64>, Vec<u64>)> {
    (
        0u64..5_000_000_000,
        1u32..100_000,
        1u32..5000,
        proptest::option::of(any::<u64>()),
        proptest::collection::vec(any::<u64>(), 0..4),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the writer writes, the reader reads back unchanged.
    #[test]
    fn write_then_read_is_identity(rows in proptest::collection::vec(arb_request(), 0..40)) {
        let mut t = 0u64;
        let reqs: Vec<Request> = rows.into_iter().enumerate().map(|(i, (gap, inp, out, sess, hashes))| {
            t += gap;
            Request {
                id: i as u64 * 7,
                arrival: SimTime::from_nanos(t),
                input_tokens: inp.max(hashes.len() as u32 * 16),
                output_tokens: out,
                session_id: sess,
                prefix_hash_ids: hashes,
                hash_block_tokens: 16,
            }
        }).collect();
        let mut w = NativeWriter::new(Vec::new(), true);
        for r in &reqs { w.write(r).unwrap(); }
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        let (_d, p) = file("p.csv", &text);
        prop_assert_eq!(read_all(&p).unwrap(), reqs);
    }

    /// Transformations keep arrivals non-decreasing and never invent requests.
    #[test]
    fn transforms_keep_order(
        gaps in proptest::collection::vec(0u64..3_000_000_000, 0..60),
        ts in 0.1f64..10.0, rs in 0.1f64..10.0,
        win in proptest::option::of((0.0f64..50.0, 0.0f64..50.0)),
        cap in proptest::option::of(0u64..70),
    ) {
        let mut t = 0u64;
        let src: Vec<Result<Request>> = gaps.iter().enumerate().map(|(i, g)| {
            t += g;
            Ok(Request::new(i as u64, SimTime::from_nanos(t), 1, 1))
        }).collect();
        let n = src.len();
        let opts = TraceOptions {
            time_scale: ts,
            rate_scale: rs,
            max_requests: cap,
            time_window: win.map(|(a, b)| (a.min(b), a.max(b) + 0.001)),
            ..TraceOptions::default()
        };
        let out: Vec<Request> = TraceReader::from_requests(src, &opts).unwrap().collect::<Result<_>>().unwrap();
        prop_assert!(out.len() <= n);
        if let Some(c) = cap { prop_assert!(out.len() as u64 <= c); }
        prop_assert!(out.windows(2).all(|w| w[0].arrival <= w[1].arrival && w[0].id < w[1].id));
    }

    /// Garbage never panics a reader: it reads or reports an input error.
    #[test]
    fn garbage_rows_do_not_panic(cells in proptest::collection::vec("[-0-9a-z. ]{0,6}", 0..12)) {
        let mut text = String::from("arrival_time_s,input_tokens,output_tokens\n");
        for row in cells.chunks(3) {
            text.push_str(&row.join(","));
            text.push('\n');
        }
        let (_d, p) = file("g.csv", &text);
        match read_all(&p) {
            Ok(_) => {}
            Err(Error::Input { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error kind: {e}"),
        }
    }
}

#[test]
fn line_numbers_survive_blank_lines_crlf_and_no_final_newline() {
    let h = "arrival_time_s,input_tokens,output_tokens";
    assert_eq!(
        read_err("t.csv", &format!("{h}\r\n0,1,1\r\n\r\n\r\n0,1,x\r\n")),
        "DIR/t.csv:5: field `output_tokens`: not a non-negative integer: `x`"
    );
    assert_eq!(
        read_err("t.csv", &format!("{h}\n0,1,1\n\n\n0,1,x")),
        "DIR/t.csv:5: field `output_tokens`: not a non-negative integer: `x`"
    );
    let (_d, p) = file("t.csv", &format!("\u{feff}{h}\r\n0,1,1\r\n\r\n1,2,2"));
    assert_eq!(read_all(&p).unwrap().len(), 2);
}

#[test]
fn shipped_samples_are_detected_and_read() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("traces");
    let cases = [
        ("azure_conv_5min.csv", TraceFormat::Native, 1445),
        ("azure_conv_10min_every2nd.csv", TraceFormat::Native, 1434),
        ("azure_code_first500.csv", TraceFormat::Azure2023, 500),
        ("mooncake_conv_first1000.csv", TraceFormat::Mooncake, 1000),
        (
            "llmservingsim_rtx4090_llama31_8b_requests.jsonl",
            TraceFormat::LlmServingSimJsonl,
            300,
        ),
    ];
    for (name, format, n) in cases {
        let reader = open_trace(&dir.join(name), &TraceOptions::default()).unwrap();
        assert_eq!(reader.format(), Some(format), "{name}");
        let reqs: Vec<Request> = reader.collect::<Result<_>>().unwrap();
        assert_eq!(reqs.len(), n, "{name}");
        assert_eq!(reqs[0].arrival, SimTime::ZERO, "{name}");
        if format == TraceFormat::Mooncake {
            assert!(reqs.iter().all(|r| r.hash_block_tokens == 512
                && r.prefix_hash_ids.len() == r.input_tokens.div_ceil(512) as usize));
        }
    }
}

#[test]
fn format_names_round_trip() {
    for f in TraceFormat::ALL {
        assert_eq!(f.name().parse::<TraceFormat>().unwrap(), f);
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(json, format!("\"{}\"", f.name()));
    }
    let e = "azure".parse::<TraceFormat>().unwrap_err().to_string();
    assert!(
        e.starts_with("unknown trace format `azure`; did you mean azure-2023"),
        "{e}"
    );
}
