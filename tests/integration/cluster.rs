//! Parallelism and cluster features move latencies in the physically right direction.

use crate::util::*;

fn json(args: &[&str]) -> serde_json::Value {
    let root = root();
    let o = servesim_in(&root, args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

#[test]
fn tp8_lowers_70b_decode_latency_by_less_than_2x() {
    let tpot = |tp: &str| {
        let v = json(&[
            "estimate",
            "--model",
            "llama-3.1-70b",
            "--hardware",
            "h100",
            "-tp",
            tp,
            "--batch-size",
            "16",
            "--input-len",
            "1024",
            "--output-len",
            "128",
            "--format",
            "json",
        ]);
        v["tpot_s"].as_f64().unwrap()
    };
    let (t4, t8) = (tpot("4"), tpot("8"));
    assert!(t8 < t4, "TP8 {t8} should beat TP4 {t4}");
    assert!(
        t4 / t8 < 2.0,
        "TP4/TP8 = {} must stay below 2 (communication and fixed costs)",
        t4 / t8
    );
}

#[test]
fn prefix_affinity_routing_hits_the_prefix_cache_more() {
    let hits = |route: &str| {
        let v = json(&[
            "simulate",
            "--config",
            "examples/cluster_llama8b_4replicas.toml",
            "--route",
            route,
            // 400 requests: at 200 the two policies nearly tie (most sessions have sent
            // only their first turn), and a change of the host time per step flipped
            // them (113 vs 109 thousand hit tokens); at 400, 218 vs 237 thousand.
            "--max-requests",
            "400",
            "--no-output",
            "--format",
            "json",
        ]);
        assert_eq!(v["replicas"].as_array().unwrap().len(), 4);
        v["prefix_hit_tokens"].as_u64().unwrap()
    };
    let rr = hits("round-robin");
    let aff = hits("prefix-affinity");
    assert!(aff > rr, "affinity {aff} should beat round-robin {rr}");
    // Every policy runs.
    hits("least-outstanding");
    hits("least-kv-load");
}

#[test]
fn disaggregation_steadies_decoding() {
    let unified = json(&[
        "simulate",
        "--num-replicas",
        "4",
        "--rate-scale",
        "4",
        "--max-model-len",
        "16384",
        "--max-requests",
        "600",
        "--no-output",
        "--format",
        "json",
    ]);
    let disagg = json(&[
        "simulate",
        "--config",
        "examples/cluster_disaggregated_1p3d.toml",
        "--max-requests",
        "600",
        "--no-output",
        "--format",
        "json",
    ]);
    let p99 = |v: &serde_json::Value, k: &str| v[k]["p99"].as_f64().unwrap();
    assert!(
        p99(&disagg, "tpot_s") < p99(&unified, "tpot_s"),
        "decode-only replicas avoid prefill interference"
    );

    assert_eq!(disagg["completed"], 600);
}

#[test]
fn expert_parallelism_adds_all_to_all_and_needs_moe() {
    let decode_ops = |hardware: &str, extra: &[&str]| -> Vec<String> {
        let mut args = vec![
            "estimate",
            "--model",
            "qwen3-235b-a22b",
            "--hardware",
            hardware,
            "-tp",
            "8",
            "--batch-size",
            "8",
            "--input-len",
            "512",
            "--output-len",
            "16",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        json(&args)["decode_ops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap().to_owned())
            .collect()
    };
    // The measured model (H100) names the all-to-all component `expert_exchange`, the
    // roofline (MI300X, no profiles) `all_to_all`; neither appears without EP.
    for (hardware, op) in [("h100", "expert_exchange"), ("mi300x", "all_to_all")] {
        let ep = decode_ops(hardware, &["--enable-expert-parallel"]);
        assert!(ep.contains(&op.to_owned()), "{hardware}: {ep:?}");
        let tp = decode_ops(hardware, &[]);
        assert!(!tp.contains(&op.to_owned()), "{hardware}: {tp:?}");
    }
    let o = servesim_in(
        &root(),
        &[
            "estimate",
            "--model",
            "llama-3.1-8b",
            "--enable-expert-parallel",
        ],
    );
    fails_with(&o, &["mixture-of-experts"]);
}

#[test]
fn tensor_parallel_groups_spanning_nodes_pay_for_the_network() {
    let ttft = |extra: &[&str]| {
        let mut args = vec![
            "estimate",
            "--model",
            "llama-3.1-70b",
            "--hardware",
            "h100",
            "-tp",
            "8",
            "--batch-size",
            "8",
            "--input-len",
            "1024",
            "--output-len",
            "8",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        json(&args)["ttft_s"].as_f64().unwrap()
    };
    let one_node = ttft(&[]);
    let two_nodes = ttft(&["--gpus-per-node", "4"]);
    let slow_net = ttft(&["--gpus-per-node", "4", "--inter-node-link", "roce-100g"]);
    assert!(
        one_node < two_nodes && two_nodes < slow_net,
        "{one_node} < {two_nodes} < {slow_net}"
    );
    let o = servesim_in(&root(), &["estimate", "--inter-node-link", "ib-nrd"]);
    fails_with(&o, &["unknown inter-node link `ib-nrd`", "ib-ndr"]);
}
