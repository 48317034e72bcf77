//! Tests of the static-batch table readers ([`super`]): Argonne tables (with and
//! without setting columns), Argonne's TTFT figures, Splitwise.

use super::*;

#[test]
fn argonne_rows_group_dedupe_and_skip() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.csv");
    std::fs::write(
        &p,
        "Hardware,Num of Hardware,Framework,Model,Input Output Length,Batch Size,Latency,Throughput\n\
         Nvidia A100 GPU,1,vLLM,meta-llama/Llama-2-7b-hf,128,1,1.0,1\n\
         Nvidia A100 GPU,1,vLLM,meta-llama/Llama-2-7b-hf,128,1,3.0,1\n\
         Nvidia A100 GPU,1,TensorRT-LLM,meta-llama/Llama-2-7b-hf,128,1,9.0,1\n\
         SambaNova SN40L,8,vLLM,meta-llama/Llama-2-7b-hf,128,1,1.0,1\n",
    )
    .unwrap();
    let t = read(&p, None).unwrap();
    assert_eq!(t.kind, TableKind::Argonne);
    assert_eq!(t.groups.len(), 1);
    let r = &t.groups[0].rows[0];
    assert_eq!((r.batch_size, r.input_len, r.output_len), (1, 128, 128));
    assert_eq!(r.e2e_s, Some(2.0));
    assert_eq!(r.repeats, 2);
    assert_eq!(r.spread, 1.0);
    assert_eq!(t.groups[0].hardware.hardware, "A100-SXM4-40GB");
    assert!(t.skipped[0].contains("SN40L"));
    assert_eq!(t.groups[0].key.slug(), "llama-2-7b-hf_nvidia-a100-gpu_tp1");
    assert_eq!(t.groups[0].slug(), "llama-2-7b-hf_nvidia-a100-gpu_tp1");
    assert_eq!(r.ttft_s, None);
    assert!(t.notes.is_empty());
}

#[test]
fn batch_latency_tables_take_separate_lengths() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("b.csv");
    std::fs::write(
        &p,
        "Hardware,Num of Hardware,Framework,Model,Input Length,Output Length,Batch Size,Batch Latency\n\
         AMD MI300X GPU,1,vLLM,meta-llama/Llama-2-70b-hf,512,256,8,17.0\n\
         AMD MI300X GPU,1,vLLM,meta-llama/Llama-2-70b-hf,512,512,8,30.0\n",
    )
    .unwrap();
    let t = read(&p, None).unwrap();
    assert_eq!(t.kind, TableKind::Argonne);
    let rows = &t.groups[0].rows;
    let got: Vec<_> = rows
        .iter()
        .map(|r| (r.batch_size, r.input_len, r.output_len, r.e2e_s, r.ttft_s))
        .collect();
    assert_eq!(
        got,
        [
            (8, 512, 256, Some(17.0), None),
            (8, 512, 512, Some(30.0), None)
        ]
    );
    // A bad batch time names its line and column.
    std::fs::write(
        &p,
        "Hardware,Num of Hardware,Framework,Model,Input Length,Output Length,Batch Size,Batch Latency\n\
         AMD MI300X GPU,1,vLLM,meta-llama/Llama-2-70b-hf,512,256,8,-1\n",
    )
    .unwrap();
    let e = read(&p, None).unwrap_err().to_string();
    assert!(
        e.contains("b.csv:2: field `Batch Latency`") && e.contains("positive"),
        "{e}"
    );
}

#[test]
fn argonne_mi250_counts_oams_so_tp_doubles() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.csv");
    std::fs::write(
        &p,
        "Hardware,Num of Hardware,Framework,Model,Input Output Length,Batch Size,Latency,Throughput\n\
         AMD MI250 GPU,2,vLLM,meta-llama/Llama-2-70b-hf,128,1,4.0,1\n",
    )
    .unwrap();
    let t = read(&p, None).unwrap();
    let g = &t.groups[0];
    assert_eq!(g.key.tp, 2, "the table's count is kept");
    assert_eq!(g.tensor_parallel_size(), 4);
    assert_eq!(g.slug(), "llama-2-70b-hf_amd-mi250-gpu_tp4");
    assert_eq!(g.hardware.hardware, "MI250 (per GCD)");
}

/// Tables that vary an engine setting group their rows by it: formats (Fig. 3),
/// parallelism (Fig. 5a), speculative decoding (Fig. 4b, rows without it kept).
#[test]
fn argonne_setting_columns_group_rows_by_their_setting() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("fig3.csv");
    std::fs::write(
        &p,
        "Hardware,Num of Hardware,Framework,Model,Input Output Length,Batch Size,kv_cache_dtype,latency,throughput\n\
         Nvidia A100 GPU,1,vLLM,meta-llama/Meta-Llama-3-8B,128,1,\"Weight = fp16, KV Cache = fp16\",1.8,1\n\
         Nvidia A100 GPU,1,vLLM,meta-llama/Meta-Llama-3-8B,128,1,\"Weight = fp16, KV Cache = fp8\",2.2,1\n\
         Nvidia A100 GPU,1,TensorRT-LLM,meta-llama/Meta-Llama-3-8B,128,1,\"Weight = int8_sq, KV Cache = int8\",1.0,1\n",
    )
    .unwrap();
    let t = read(&p, None).unwrap();
    let slugs: Vec<String> = t.groups.iter().map(TableGroup::slug).collect();
    assert_eq!(
        slugs,
        [
            "meta-llama-3-8b_nvidia-a100-gpu_tp1",
            "meta-llama-3-8b_nvidia-a100-gpu_tp1_kv-fp8"
        ]
    );
    assert_eq!(
        t.groups[1].key.setting.kv_cache_dtype.as_deref(),
        Some("fp8")
    );
    assert!(t.notes[0].contains("kv_cache_dtype"), "{:?}", t.notes);
    let trt = read(&p, Some("TensorRT-LLM")).unwrap();
    let s = &trt.groups[0].key.setting;
    assert_eq!(
        (s.quantization.as_deref(), s.kv_cache_dtype.as_deref()),
        (Some("int8"), Some("int8"))
    );
    // An unknown format leaves its rows out; a cell of another shape names its line
    // and column.
    std::fs::write(
        &p,
        "Hardware,Num of Hardware,Framework,Model,Input Output Length,Batch Size,kv_cache_dtype,latency\n\
         Nvidia A100 GPU,1,vLLM,meta-llama/Meta-Llama-3-8B,128,1,\"Weight = int3, KV Cache = fp8\",1.8\n\
         Nvidia A100 GPU,1,vLLM,meta-llama/Meta-Llama-3-8B,128,1,\"Weight = fp16, KV Cache = fp16\",1.8\n",
    )
    .unwrap();
    let t = read(&p, None).unwrap();
    assert_eq!(t.groups.len(), 1);
    assert!(t.skipped[0].contains("`int3`"), "{:?}", t.skipped);
    std::fs::write(
        &p,
        "Hardware,Num of Hardware,Framework,Model,Input Output Length,Batch Size,kv_cache_dtype,latency\n\
         Nvidia A100 GPU,1,vLLM,meta-llama/Meta-Llama-3-8B,128,1,fp8,1.8\n",
    )
    .unwrap();
    let e = read(&p, None).unwrap_err().to_string();
    assert!(
        e.contains("fig3.csv:2: field `kv_cache_dtype`") && e.contains("expected `Weight"),
        "{e}"
    );

    let p = dir.path().join("fig5.csv");
    std::fs::write(
        &p,
        "Hardware,Num of Hardware,Framework,Model,Input Output Length,Batch Size,Parallelism Type,Latency,Throughput\n\
         Nvidia A100 GPU,4,TensorRT-LLM,meta-llama/Llama-2-7b-hf,128,1,Pipeline Parallelism,1.5,1\n\
         Nvidia A100 GPU,4,TensorRT-LLM,meta-llama/Llama-2-7b-hf,128,1,Hybird Tensor (2) and Pipeline (2) Parallelism,1.0,1\n\
         Nvidia A100 GPU,4,TensorRT-LLM,mistralai/Mixtral-8x7B-v0.1,128,1,EP,1.9,1\n\
         Nvidia A100 GPU,4,TensorRT-LLM,mistralai/Mixtral-8x7B-v0.1,128,1,Hybrid TP = 2 and EP = 2,1.9,1\n",
    )
    .unwrap();
    let t = read(&p, Some("TensorRT-LLM")).unwrap();
    let got: Vec<(String, u32)> = t
        .groups
        .iter()
        .map(|g| (g.slug(), g.tensor_parallel_size()))
        .collect();
    assert_eq!(
        got,
        [
            ("llama-2-7b-hf_nvidia-a100-gpu_tp2_pp2".to_owned(), 2),
            ("llama-2-7b-hf_nvidia-a100-gpu_tp1_pp4".to_owned(), 1),
            ("mixtral-8x7b-v0.1_nvidia-a100-gpu_tp4_ep".to_owned(), 4),
        ]
    );
    assert!(
        t.skipped[0].starts_with("1 rows of TensorRT-LLM: `Hybrid TP = 2 and EP = 2`"),
        "{:?}",
        t.skipped
    );

    let p = dir.path().join("fig4.csv");
    std::fs::write(
        &p,
        "Hardware,Num of Hardware,Framework,Model,Input Output Length,Batch Size,speculative model,num speculative tokens,Latency,Throughput\n\
         Nvidia A100 GPU,1,vLLM,meta-llama/Llama-2-7b-hf,128,64,JackFram/llama-68m,3,5.7,1\n\
         Nvidia A100 GPU,1,vLLM,meta-llama/Llama-2-7b-hf,128,64,None,None,3.2,1\n",
    )
    .unwrap();
    let t = read(&p, None).unwrap();
    assert_eq!(t.groups.len(), 1);
    assert_eq!(t.groups[0].rows[0].e2e_s, Some(3.2));
    assert!(
        t.skipped[0].contains("speculative decoding"),
        "{:?}",
        t.skipped
    );
    // A table of nothing but unmodelled rows says why nothing is left.
    std::fs::write(
        &p,
        "Hardware,Num of Hardware,Framework,Model,Input Output Length,Batch Size,speculative model,Latency\n\
         Nvidia A100 GPU,1,vLLM,meta-llama/Llama-2-7b-hf,128,64,JackFram/llama-68m,5.7\n",
    )
    .unwrap();
    let e = read(&p, None).unwrap_err().to_string();
    assert!(
        e.contains("no row of framework `vLLM` can be replayed"),
        "{e}"
    );
    // With and without a KV cache is refused.
    let p = dir.path().join("fig2a.csv");
    std::fs::write(
        &p,
        "Hardware,Num of Hardware,Framework,Model,Input Output Length,Batch Size,KV Cache,Latency\n\
         Habana Gaudi2,1,DeepSpeed,meta-llama/Llama-2-7b-hf,128,1,Without KV Cache,1.0\n",
    )
    .unwrap();
    let e = read(&p, None).unwrap_err().to_string();
    assert!(
        e.contains("field `KV Cache`") && e.contains("without a KV cache"),
        "{e}"
    );
}

const FIG21_HEAD: &str =
    "Hardware,Num of Hardware,Framework,Model,Input Length,Output Length,Batch Size,Latency\n";

#[test]
fn argonne_ttft_figure_21_reads_latency_as_batch_ttft() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("fig21.csv");
    std::fs::write(
        &p,
        format!(
            "{FIG21_HEAD}\n\
             AMD MI250 GPU,1,vLLM,meta-llama/Llama-2-7b-hf,1024,1,16,2.0\n\
             Nvidia GH200 GPU,1,vLLM,meta-llama/Llama-2-7b-hf,1024,1,16,0.3\n\
             Nvidia GH200 GPU,1,vLLM,meta-llama/Llama-2-7b-hf,1024,1,16,0.5\n\
             Nvidia GH200 GPU,1,TensorRT-LLM,meta-llama/Llama-2-7b-hf,1024,1,16,9.0\n\
             SambaNova SN40L,8,sambaflow,meta-llama/Llama-2-7b-hf,1024,1,16,2.85\n"
        ),
    )
    .unwrap();
    let t = read(&p, None).unwrap();
    assert_eq!(t.kind, TableKind::ArgonneTtft);
    assert_eq!(t.groups.len(), 2);
    let gh = t
        .groups
        .iter()
        .find(|g| g.hardware.hardware == "GH200-96GB")
        .unwrap();
    let r = &gh.rows[0];
    assert_eq!((r.batch_size, r.input_len, r.output_len), (16, 1024, 1));
    assert_eq!(
        r.ttft_s,
        Some(0.4),
        "repeats averaged, other frameworks left out"
    );
    assert_eq!(r.e2e_s, None);
    assert_eq!(r.repeats, 2);
    let mi = t
        .groups
        .iter()
        .find(|g| g.key.hardware.contains("MI250"))
        .unwrap();
    assert_eq!(mi.tensor_parallel_size(), 2);
    assert!(t.notes[0].contains("`Latency`"), "{:?}", t.notes);

    // A bare `Latency` is TTFT only with one output token.
    std::fs::write(
        &p,
        format!("{FIG21_HEAD}Nvidia GH200 GPU,1,vLLM,meta-llama/Llama-2-7b-hf,1024,2,16,0.3\n"),
    )
    .unwrap();
    let e = read(&p, None).unwrap_err().to_string();
    assert!(
        e.contains("fig21.csv:2: field `Output Length`") && e.contains("one output token"),
        "{e}"
    );
}

#[test]
fn argonne_ttft_figure_22_reads_ttft_and_leaves_end_latency() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("fig22.csv");
    std::fs::write(
        &p,
        "Hardware,Num of Hardware,Framework,Model,Input Length,Output Length,Batch Size,TTFT Latency,end_latency \n\
         Nvidia GH200 GPU,1,vLLM,meta-llama/Llama-2-7b-hf,1024,1,16,0.35,12.2\n\
         Nvidia GH200 GPU,1,TensorRT-LLM,meta-llama/Llama-2-7b-hf,1024,1,16,0.33\n",
    )
    .unwrap();
    let t = read(&p, None).unwrap();
    assert_eq!(t.kind, TableKind::ArgonneTtft);
    assert_eq!(t.groups[0].rows[0].ttft_s, Some(0.35));
    assert!(t
        .notes
        .iter()
        .any(|n| n.contains("`end_latency` is not read")));
    // A missing TTFT value is an error with its line.
    std::fs::write(
        &p,
        "Hardware,Num of Hardware,Framework,Model,Input Length,Output Length,Batch Size,TTFT Latency\n\
         Nvidia GH200 GPU,1,vLLM,meta-llama/Llama-2-7b-hf,1024,1,16,fast\n",
    )
    .unwrap();
    let e = read(&p, None).unwrap_err().to_string();
    assert!(
        e.ends_with("fig22.csv:2: field `TTFT Latency`: not a finite number: `fast`"),
        "{e}"
    );
}

/// The shipped Argonne TTFT figures parse, with the vLLM devices they hold mapped.
/// Skipped when `../shared` is absent.
#[test]
fn shipped_argonne_ttft_figures_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/validation/argonne-llm-inference-bench");
    for (file, end_latency) in [
        ("Fig_21__all_results_TTFT.csv", false),
        ("Fig_22__all_results_TTFT_ITL.csv", true),
    ] {
        let p = dir.join(file);
        if !p.is_file() {
            println!("skipped: {} not found", p.display());
            continue;
        }
        let t = read(&p, None).unwrap();
        assert_eq!(t.kind, TableKind::ArgonneTtft, "{file}");
        let mut slugs: Vec<String> = t.groups.iter().map(TableGroup::slug).collect();
        slugs.sort();
        assert!(
            slugs.contains(&"llama-2-7b-hf_amd-mi250-gpu_tp2".to_owned())
                && slugs.contains(&"meta-llama-3-8b_nvidia-gh200-gpu_tp1".to_owned())
                && slugs.contains(&"mistral-7b-v0.1_amd-mi300x-gpu_tp1".to_owned()),
            "{file}: {slugs:?}"
        );
        for g in &t.groups {
            for r in &g.rows {
                assert_eq!((r.batch_size, r.input_len, r.output_len), (16, 1024, 1));
                assert!(r.ttft_s.is_some_and(|x| x > 0.0) && r.e2e_s.is_none());
            }
        }
        assert_eq!(
            t.notes.iter().any(|n| n.contains("end_latency")),
            end_latency,
            "{file}"
        );
    }
}

/// The shipped Argonne tables that vary one setting parse into their groups, with
/// the unmodelled rows counted. Skipped when `../shared` is absent.
#[test]
fn shipped_argonne_setting_tables_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/validation/argonne-llm-inference-bench");
    for (file, framework, groups, left_out) in [
        ("Fig_3__A100_H100_quant_all_results.csv", None, 2, 0),
        (
            "Fig_3__A100_H100_quant_all_results.csv",
            Some("TensorRT-LLM"),
            4,
            0,
        ),
        (
            "Fig_3__qaunt_results__quant_all_results.csv",
            Some("TensorRT-LLM"),
            4,
            0,
        ),
        ("Fig_2_b__All_results.csv", None, 18, 0),
        ("Fig_4_b__All_results.csv", None, 3, 9),
        ("Fig_5_a__TP_PP_Results.csv", Some("TensorRT-LLM"), 24, 4),
    ] {
        let p = dir.join(file);
        if !p.is_file() {
            println!("skipped: {} not found", p.display());
            continue;
        }
        let t = read(&p, framework).unwrap();
        assert_eq!(t.groups.len(), groups, "{file} {framework:?}");
        let left: usize = t
            .skipped
            .iter()
            .filter_map(|s| s.split_whitespace().next()?.parse::<usize>().ok())
            .sum();
        assert_eq!(left, left_out, "{file}: {:?}", t.skipped);
        for g in &t.groups {
            assert!(!g.rows.is_empty() && g.tensor_parallel_size() >= 1);
        }
    }
}

#[test]
fn splitwise_units_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.csv");
    let head = "model,hardware,prompt_size,batch_size,token_size,peak_power,average_power,prompt_time,token_time,e2e_time,tensor_parallel\n";
    std::fs::write(
        &p,
        format!("{head}llama2-70b,a100-80gb,512,2,1024,1,1,200,50,9000,4\n"),
    )
    .unwrap();
    let t = read(&p, None).unwrap();
    let r = &t.groups[0].rows[0];
    assert_eq!(r.prefill_s, Some(0.2));
    assert_eq!(r.decode_step_s, Some(0.05));
    assert_eq!(r.e2e_s, None, "long-output e2e is unreliable");
    std::fs::write(
        &p,
        format!("{head}llama2-70b,a100-80gb,512,2,128,1,1,-3,50,9000,4\n"),
    )
    .unwrap();
    let e = read(&p, None).unwrap_err().to_string();
    assert!(
        e.ends_with("s.csv:2: field `prompt_time`: must be positive, got -3"),
        "{e}"
    );
    std::fs::write(&p, "a,b\n1,2\n").unwrap();
    assert!(read(&p, None)
        .unwrap_err()
        .to_string()
        .contains("not a static-batch table"));
}
