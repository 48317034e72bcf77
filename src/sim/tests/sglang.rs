//! SGLang's scheduling: prefill batches run alone and first; admission keeps KV for
//! the running requests' remaining output.

use super::*;
use crate::engine::config::KvReservation;

/// SGLang's shipped figures (perf_model/stacks/sglang.toml).
pub(super) const RESERVE: KvReservation = KvReservation {
    initial_ratio: 0.7,
    min_ratio: 0.098,
    decay_steps: 600,
    clip_output_tokens: Some(4096),
    retract_decode_steps: 20,
};

struct Quiet;
impl RequestSink for Quiet {
    fn on_tokens(&mut self, _: &crate::engine::TokenEvent) {}
    fn on_request_end(&mut self, _: RequestRecord) {}
}

/// A replica of `kind` with a 64-token chunked budget over `blocks` 16-token blocks.
fn replica(kind: SchedulerKind, blocks: u32, reserve: Option<KvReservation>) -> Replica {
    build(config(kind, blocks, reserve))
}

/// The settings of [`replica`], to change before [`build`].
fn config(kind: SchedulerKind, blocks: u32, reserve: Option<KvReservation>) -> EngineConfig {
    let mut cfg = EngineConfig::defaults_for(kind, blocks, 4096);
    cfg.max_num_batched_tokens = 64;
    cfg.enable_prefix_caching = false;
    cfg.kv_reservation = reserve;
    cfg
}

/// A replica of `cfg` on the tests' fixed latency model.
fn build(cfg: EngineConfig) -> Replica {
    Replica::new(0, cfg, Arc::new(FixedLatency::from_micros(100, 1, 0))).unwrap()
}

/// Run one iteration at `now`; the tokens it computed and when it ended.
fn step(r: &mut Replica, now: SimTime) -> (u64, SimTime) {
    let end = r.try_start_step(now).expect("an iteration can start").done;
    let tokens = r.tokens_in_step();
    r.finish_step(end, &mut Quiet);
    (tokens, end)
}

#[test]
fn a_prompt_runs_alone_and_before_the_running_decodes() {
    // A decodes; B's 100-token prompt arrives: SGLang prefills it in two chunks alone
    // (64, 36 tokens) before A's next token; vLLM V1 mixes A's decode into each, and so
    // does SGLang with --enable-mixed-chunk (the chunks shrink by the one token A takes:
    // 63 + 1, 37 + 1).
    for (kind, mixed, expect) in [
        (SchedulerKind::Sglang, false, [64, 36, 2]),
        (SchedulerKind::VllmV1, false, [64, 38, 2]),
        (SchedulerKind::Sglang, true, [64, 38, 2]),
    ] {
        let mut cfg = config(kind, 1000, None);
        cfg.enable_mixed_chunk = mixed;
        let mut r = build(cfg);
        let mut now = SimTime::ZERO;
        r.add_request(req(0, 0, 10, 50), now, &mut Quiet);
        for _ in 0..3 {
            now = step(&mut r, now).1;
        }
        r.add_request(req(1, 0, 100, 50), now, &mut Quiet);
        let mut got = [0; 3];
        for g in &mut got {
            let (tokens, end) = step(&mut r, now);
            *g = tokens;
            now = end;
        }
        assert_eq!(got, expect, "{kind}, mixed {mixed}");
    }
}

#[test]
fn max_prefill_tokens_closes_the_prefill_batch() {
    // Three 20-token prompts under a 64-token chunk budget: all three in one prefill
    // batch, or two with max_prefill_tokens 30 (the second overshoots it, as SGLang's
    // soft limit lets it).
    for (limit, expect) in [(None, 60), (Some(30), 40)] {
        let mut cfg = config(SchedulerKind::Sglang, 1000, None);
        cfg.max_prefill_tokens = limit;
        let mut r = build(cfg);
        for id in 0..3 {
            r.add_request(req(id, 0, 20, 5), SimTime::ZERO, &mut Quiet);
        }
        assert_eq!(step(&mut r, SimTime::ZERO).0, expect, "{limit:?}");
    }
}

#[test]
fn admission_keeps_kv_for_the_running_requests_output() {
    // 20 blocks = 320 tokens. A (100 in, 150 out) runs; B (100 in, 100 out) needs 200
    // tokens set aside while A keeps 0.7 of its remaining output: SGLang holds B back
    // until A is done, vLLM admits it at once.
    for (reserve, waits) in [(Some(RESERVE), true), (None, false)] {
        let mut r = replica(SchedulerKind::Sglang, 20, reserve);
        let mut now = SimTime::ZERO;
        r.add_request(req(0, 0, 100, 150), now, &mut Quiet);
        for _ in 0..3 {
            now = step(&mut r, now).1;
        }
        r.add_request(req(1, 0, 100, 100), now, &mut Quiet);
        now = step(&mut r, now).1;
        assert_eq!(r.num_waiting() == 1, waits, "reservation {reserve:?}");
        while r.num_outstanding() > 0 {
            now = step(&mut r, now).1;
        }
        assert_eq!(r.kv_used_blocks(), 0, "KV leaked");
    }
}

#[test]
fn a_lone_request_is_admitted_whatever_it_sets_aside() {
    // 7 blocks = 112 tokens: prompt and output (60 + 50) leave no room to set aside,
    // but with nothing running the request must start, or it would wait forever.
    let mut r = replica(SchedulerKind::Sglang, 7, Some(RESERVE));
    let mut now = SimTime::ZERO;
    r.add_request(req(0, 0, 60, 50), now, &mut Quiet);
    let mut steps = 0;
    while r.num_outstanding() > 0 {
        now = step(&mut r, now).1;
        steps += 1;
    }
    assert_eq!(steps, 1 + 49);
}

#[test]
fn a_full_reservation_never_preempts() {
    // TensorRT-LLM's GUARANTEED_NO_EVICT: ratio 1, uncapped. Twelve requests of 40 + 60
    // tokens on 20 blocks (320 tokens) preempt without it and never with it.
    let no_evict = KvReservation {
        initial_ratio: 1.0,
        min_ratio: 1.0,
        decay_steps: 1,
        clip_output_tokens: None,
        retract_decode_steps: 0,
    };
    for (reserve, preempts) in [(Some(no_evict), false), (None, true)] {
        let mut r = replica(SchedulerKind::VllmV1, 20, reserve);
        let mut now = SimTime::ZERO;
        for i in 0..12 {
            r.add_request(req(i, 0, 40, 60), now, &mut Quiet);
        }
        while r.num_outstanding() > 0 {
            now = step(&mut r, now).1;
        }
        assert_eq!(r.counters().preemptions > 0, preempts, "{reserve:?}");
        assert_eq!(r.kv_used_blocks(), 0, "KV leaked");
    }
}

/// `--scheduler-recv-interval 4`: while A decodes, B's prompt reaches the engine but
/// waits until the fourth decode iteration since the last poll before it is scheduled;
/// at interval 1 it runs at the next iteration. Settings other than SGLang's refuse it.
#[test]
fn a_recv_interval_holds_new_prompts_for_decode_iterations() {
    let first_prefill_after = |interval: u32| {
        let mut cfg = config(SchedulerKind::Sglang, 1000, None);
        cfg.scheduler_recv_interval = interval;
        let mut r = build(cfg);
        let mut now = SimTime::ZERO;
        r.add_request(req(0, 0, 10, 50), now, &mut Quiet);
        // A's prefill (a poll follows it at once), then one decode.
        for _ in 0..2 {
            now = step(&mut r, now).1;
        }
        r.add_request(req(1, 0, 30, 5), now, &mut Quiet);
        (1..=8)
            .find(|_| {
                let (tokens, end) = step(&mut r, now);
                now = end;
                tokens > 1
            })
            .expect("B's prompt runs")
    };
    assert_eq!(first_prefill_after(1), 1);
    // Decodes counted since the poll after A's prefill: 1 before B arrived, then 2 and
    // 3; the decision after the fourth polls.
    assert_eq!(first_prefill_after(4), 4);
    let mut cfg = config(SchedulerKind::VllmV1, 1000, None);
    cfg.scheduler_recv_interval = 4;
    let e = cfg.validate().unwrap_err().to_string();
    assert!(e.contains("--scheduler-recv-interval is SGLang's"), "{e}");
    cfg.scheduler_recv_interval = 0;
    assert!(cfg.validate().is_err());
}
