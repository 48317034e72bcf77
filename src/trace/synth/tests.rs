//! Generator tests: determinism, stream independence, rate and CV, streaming.

use super::*;
use proptest::prelude::*;

fn cfg(arrival: ArrivalProcess, n: u64, seed: u64) -> SynthConfig {
    SynthConfig {
        arrival,
        lengths: LengthModel::Independent {
            input: LengthDist::LogNormal {
                mean: 1000.0,
                cv: 1.0,
                max: Some(8192),
            },
            output: LengthDist::Uniform { lo: 1, hi: 512 },
        },
        limit: SynthLimit::Requests(n),
        seed,
    }
}

fn gen(c: SynthConfig) -> Vec<Request> {
    SynthTrace::new(c).unwrap().collect()
}

/// Inter-arrival gaps in seconds.
fn gaps(reqs: &[Request]) -> Vec<f64> {
    reqs.windows(2)
        .map(|w| (w[1].arrival.as_nanos() - w[0].arrival.as_nanos()) as f64 / 1e9)
        .collect()
}

fn mean_cv(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt() / mean)
}

#[test]
fn same_seed_same_sequence_other_seed_other_sequence() {
    let p = ArrivalProcess::Gamma {
        rate_rps: 5.0,
        cv: 2.0,
    };
    let a = gen(cfg(p.clone(), 500, 42));
    assert_eq!(a, gen(cfg(p.clone(), 500, 42)));
    let b = gen(cfg(p, 500, 43));
    assert_ne!(
        a.iter().map(|r| r.arrival).collect::<Vec<_>>(),
        b.iter().map(|r| r.arrival).collect::<Vec<_>>()
    );
    assert_ne!(
        a.iter().map(|r| r.input_tokens).collect::<Vec<_>>(),
        b.iter().map(|r| r.input_tokens).collect::<Vec<_>>()
    );
    assert_eq!(
        a.iter().map(|r| r.id).collect::<Vec<_>>(),
        (0..500).collect::<Vec<_>>()
    );
}

#[test]
fn streams_are_independent() {
    // Changing the arrival process leaves the lengths alone...
    let a = gen(cfg(ArrivalProcess::Poisson { rate_rps: 5.0 }, 300, 1));
    let b = gen(cfg(ArrivalProcess::Constant { rate_rps: 50.0 }, 300, 1));
    let lens = |v: &[Request]| {
        v.iter()
            .map(|r| (r.input_tokens, r.output_tokens))
            .collect::<Vec<_>>()
    };
    assert_eq!(lens(&a), lens(&b));
    // ...and changing the input distribution leaves arrivals and output lengths alone.
    let mut c = cfg(ArrivalProcess::Poisson { rate_rps: 5.0 }, 300, 1);
    c.lengths = LengthModel::Independent {
        input: LengthDist::Fixed(7),
        output: LengthDist::Uniform { lo: 1, hi: 512 },
    };
    let c = gen(c);
    assert!(c.iter().all(|r| r.input_tokens == 7));
    assert!(a
        .iter()
        .zip(&c)
        .all(|(x, y)| x.arrival == y.arrival && x.output_tokens == y.output_tokens));
}

#[test]
fn poisson_rate_and_cv() {
    let r = gen(cfg(ArrivalProcess::Poisson { rate_rps: 20.0 }, 200_001, 3));
    assert_eq!(r[0].arrival, SimTime::ZERO);
    let (mean, cv) = mean_cv(&gaps(&r));
    // 200k exponential gaps: the sample mean's relative error has sd 1/sqrt(n) ≈ 0.2 %.
    assert!(
        (1.0 / mean - 20.0).abs() / 20.0 < 0.01,
        "rate {}",
        1.0 / mean
    );
    assert!((cv - 1.0).abs() < 0.02, "cv {cv}");
}

#[test]
fn gamma_rate_and_cv() {
    for (rate, want_cv) in [(10.0, 0.5), (10.0, 2.0), (3.0, 4.0)] {
        let r = gen(cfg(
            ArrivalProcess::Gamma {
                rate_rps: rate,
                cv: want_cv,
            },
            200_001,
            9,
        ));
        let (mean, cv) = mean_cv(&gaps(&r));
        assert!(
            (1.0 / mean - rate).abs() / rate < 0.03,
            "rate {} for cv {want_cv}",
            1.0 / mean
        );
        assert!(
            (cv - want_cv).abs() / want_cv < 0.05,
            "cv {cv}, want {want_cv}"
        );
    }
}

#[test]
fn constant_burst_and_closed_loop() {
    let r = gen(cfg(ArrivalProcess::Constant { rate_rps: 3.0 }, 4, 0));
    let t: Vec<u64> = r.iter().map(|r| r.arrival.as_nanos()).collect();
    assert_eq!(t, [0, 333_333_333, 666_666_667, 1_000_000_000]);
    let mut t = SynthTrace::new(cfg(ArrivalProcess::ClosedLoop { concurrency: 4 }, 10, 0)).unwrap();
    assert_eq!(t.arrival_process().closed_loop_concurrency(), Some(4));
    assert!(t.all(|r| r.arrival == SimTime::ZERO));
    assert!(gen(cfg(ArrivalProcess::Burst, 10, 0))
        .iter()
        .all(|r| r.arrival == SimTime::ZERO));
}

#[test]
fn duration_limit() {
    let mut c = cfg(ArrivalProcess::Poisson { rate_rps: 100.0 }, 0, 5);
    c.limit = SynthLimit::Duration(SimDuration::from_secs_f64(60.0));
    let r = gen(c.clone());
    assert!(r.last().unwrap().arrival < SimTime::from_secs_f64(60.0));
    assert!((r.len() as f64 - 6000.0).abs() < 400.0, "{}", r.len());
    c.arrival = ArrivalProcess::ClosedLoop { concurrency: 2 };
    assert!(SynthTrace::new(c).is_err());
}

#[test]
fn a_million_requests_stream_in_constant_memory() {
    // The generator stores nothing per request: iterate 1M without collecting.
    let t = SynthTrace::new(cfg(
        ArrivalProcess::Poisson { rate_rps: 1000.0 },
        1_000_000,
        11,
    ))
    .unwrap();
    assert!(std::mem::size_of_val(&t) < 4096);
    let (mut n, mut last, mut ok) = (0u64, SimTime::ZERO, true);
    for r in t {
        ok &= r.arrival >= last;
        last = r.arrival;
        n += 1;
    }
    assert!(ok);
    assert_eq!(n, 1_000_000);
}

#[test]
fn length_specs_parse_and_print() {
    let cases = [
        ("512", LengthDist::Fixed(512)),
        ("fixed:512", LengthDist::Fixed(512)),
        (
            "uniform:128:2048",
            LengthDist::Uniform { lo: 128, hi: 2048 },
        ),
        (
            "lognormal:1000:1.5",
            LengthDist::LogNormal {
                mean: 1000.0,
                cv: 1.5,
                max: None,
            },
        ),
        (
            "LogNormal:1000:1.5:4096",
            LengthDist::LogNormal {
                mean: 1000.0,
                cv: 1.5,
                max: Some(4096),
            },
        ),
    ];
    for (s, want) in cases {
        let d: LengthDist = s.parse().unwrap();
        assert_eq!(d, want);
        assert_eq!(d.to_string().parse::<LengthDist>().unwrap(), d);
    }
    for bad in [
        "",
        "fixed:0",
        "uniform:5:4",
        "uniform:0:4",
        "lognormal:0.5:1",
        "lognormal:100:-1",
        "normal:5:1",
        "fixed:x",
        "lognormal:100:1:0",
    ] {
        assert!(bad.parse::<LengthDist>().is_err(), "{bad}");
    }
    let e = "uniform:5:4".parse::<LengthDist>().unwrap_err().to_string();
    assert_eq!(e, "invalid configuration: length distribution `uniform:5:4`: the upper bound 4 is below the lower bound 5");
}

#[test]
fn lognormal_lengths_have_the_asked_mean_and_cv() {
    let mut c = cfg(ArrivalProcess::Burst, 200_000, 2);
    c.lengths = LengthModel::Independent {
        input: LengthDist::LogNormal {
            mean: 800.0,
            cv: 0.8,
            max: None,
        },
        output: LengthDist::Fixed(1),
    };
    let x: Vec<f64> = SynthTrace::new(c)
        .unwrap()
        .map(|r| f64::from(r.input_tokens))
        .collect();
    let (mean, cv) = mean_cv(&x);
    assert!((mean - 800.0).abs() / 800.0 < 0.01, "mean {mean}");
    assert!((cv - 0.8).abs() / 0.8 < 0.05, "cv {cv}");
}

#[test]
fn resampling_draws_pairs_from_the_trace() {
    let pairs: Arc<[(u32, u32)]> = vec![(10, 1), (20, 2), (30, 3)].into();
    let mut c = cfg(ArrivalProcess::Poisson { rate_rps: 1.0 }, 3000, 0);
    c.lengths = LengthModel::Resample {
        pairs: pairs.clone(),
    };
    let r = gen(c);
    assert!(r
        .iter()
        .all(|r| pairs.contains(&(r.input_tokens, r.output_tokens))));
    for p in pairs.iter() {
        let k = r
            .iter()
            .filter(|r| (r.input_tokens, r.output_tokens) == *p)
            .count();
        assert!((800..1200).contains(&k), "{p:?} drawn {k} times");
    }
    let empty: Arc<[(u32, u32)]> = Vec::new().into();
    let mut c = cfg(ArrivalProcess::Burst, 1, 0);
    c.lengths = LengthModel::Resample { pairs: empty };
    assert!(SynthTrace::new(c).is_err());
}

#[test]
fn bad_processes_are_rejected() {
    for p in [
        ArrivalProcess::Poisson { rate_rps: 0.0 },
        ArrivalProcess::Poisson {
            rate_rps: f64::INFINITY,
        },
        ArrivalProcess::Gamma {
            rate_rps: 1.0,
            cv: 0.0,
        },
        ArrivalProcess::Gamma {
            rate_rps: 1.0,
            cv: f64::NAN,
        },
        ArrivalProcess::Constant { rate_rps: -1.0 },
        ArrivalProcess::ClosedLoop { concurrency: 0 },
    ] {
        assert!(SynthTrace::new(cfg(p.clone(), 1, 0)).is_err(), "{p:?}");
    }
    let p: ArrivalProcess = toml::from_str("kind = \"gamma\"\nrate_rps = 2.0\ncv = 3.0\n").unwrap();
    assert_eq!(
        p,
        ArrivalProcess::Gamma {
            rate_rps: 2.0,
            cv: 3.0
        }
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Any valid configuration gives non-decreasing arrivals and in-range lengths.
    #[test]
    fn arrivals_non_decreasing_lengths_in_range(
        seed in any::<u64>(),
        kind in 0u8..4,
        rate in 0.01f64..1000.0,
        cv in 0.05f64..8.0,
        lo in 1u32..5000, span in 0u32..5000,
    ) {
        let arrival = match kind {
            0 => ArrivalProcess::Poisson { rate_rps: rate },
            1 => ArrivalProcess::Gamma { rate_rps: rate, cv },
            2 => ArrivalProcess::Constant { rate_rps: rate },
            _ => ArrivalProcess::ClosedLoop { concurrency: 3 },
        };
        let c = SynthConfig {
            arrival,
            lengths: LengthModel::Independent {
                input: LengthDist::Uniform { lo, hi: lo + span },
                output: LengthDist::LogNormal { mean: f64::from(lo), cv, max: Some(lo + span) },
            },
            limit: SynthLimit::Requests(300),
            seed,
        };
        let r = gen(c);
        prop_assert_eq!(r.len(), 300);
        prop_assert!(r.windows(2).all(|w| w[0].arrival <= w[1].arrival));
        prop_assert!(r.iter().all(|r| (lo..=lo + span).contains(&r.input_tokens)));
        prop_assert!(r.iter().all(|r| (1..=lo + span).contains(&r.output_tokens)));
    }
}
