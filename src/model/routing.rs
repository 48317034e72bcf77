//! How many experts a batch's tokens touch under expert parallelism, where the MoE
//! layer waits for its busiest GPU.
//!
//! With the routed experts spread whole over `G` GPUs (`L = E / G` each), a GPU
//! streams the weights of every local expert that at least one token picked. The layer
//! ends when the busiest GPU does, so its time follows the *largest* count over the
//! GPUs, not the mean `E·p / G`: one token choosing 2 of Mixtral's 8 experts touches
//! half an expert per GPU on average, but the GPU that holds one of them streams a
//! whole expert. Tensor parallelism without expert parallelism has no such maximum:
//! every GPU holds a slice of every expert and streams the slices of the same touched
//! experts.
//!
//! Model: tokens pick their `k` experts uniformly and independently, so each local
//! expert is touched with probability `p = 1 − (1 − k/E)^T`; one GPU's count is taken
//! as Binomial(`L`, `p`) and the GPUs as independent, giving
//! `E[max] = Σ_{x=1..L} (1 − F(x − 1)^G)` with `F` the binomial CDF. (The counts of
//! different GPUs are slightly anti-correlated; the test below holds the approximation
//! within a few percent of sampled routing.)

/// Expected distinct experts, `E·(1 − (1 − k/E)^T)`, that `tokens` tokens touch when
/// each picks `per_token` of the `total` uniformly (fractional tokens allowed).
pub fn experts_touched(total: f64, per_token: f64, tokens: f64) -> f64 {
    if total <= 0.0 {
        return 0.0;
    }
    total * touch_probability(total, per_token, tokens)
}

/// Probability that one given expert is touched by `tokens` tokens that each pick
/// `per_token` of the `total` uniformly: `1 − (1 − k/E)^T`.
pub fn touch_probability(total: f64, per_token: f64, tokens: f64) -> f64 {
    1.0 - (1.0 - (per_token / total).clamp(0.0, 1.0)).powf(tokens)
}

/// Expected experts touched on the busiest of `ranks` GPUs that hold `total / ranks`
/// whole experts each, for `tokens` tokens (fractional allowed) that each pick
/// `per_token` of the `total` experts. With one rank (or fewer), the experts touched in
/// all, `E·p`.
pub fn busiest_rank_experts_touched(total: f64, per_token: f64, tokens: f64, ranks: f64) -> f64 {
    if total <= 0.0 || per_token <= 0.0 || tokens <= 0.0 {
        return 0.0;
    }
    if ranks <= 1.0 {
        return experts_touched(total, per_token, tokens);
    }
    let p = touch_probability(total, per_token, tokens);
    let local = (total / ranks).round().max(1.0) as u32;
    if p >= 1.0 {
        return f64::from(local);
    }
    // Binomial(local, p) pmf by the ratio recurrence, accumulated into the CDF.
    let q = 1.0 - p;
    let mut pmf = q.powi(local as i32);
    let mut cdf = 0.0;
    let mut expected_max = 0.0;
    for x in 1..=local {
        cdf += pmf; // F(x − 1)
        expected_max += 1.0 - cdf.min(1.0).powf(ranks);
        pmf *= f64::from(local - x + 1) / f64::from(x) * p / q;
    }
    expected_max
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::seq::index::sample;
    use rand::SeedableRng;

    /// Sampled routing: each token picks `k` distinct experts uniformly; the experts are
    /// laid out in `ranks` contiguous blocks; the mean over trials of the largest count
    /// of touched experts in a block.
    fn sampled(total: usize, k: usize, tokens: usize, ranks: usize, trials: usize) -> f64 {
        let mut rng = StdRng::seed_from_u64(7);
        let local = total / ranks;
        let mut sum = 0usize;
        for _ in 0..trials {
            let mut hit = vec![false; total];
            for _ in 0..tokens {
                for e in sample(&mut rng, total, k) {
                    hit[e] = true;
                }
            }
            sum += hit
                .chunks(local)
                .map(|c| c.iter().filter(|&&h| h).count())
                .max()
                .unwrap_or(0);
        }
        sum as f64 / trials as f64
    }

    #[test]
    fn busiest_rank_matches_sampled_routing() {
        for (total, k, tokens, ranks) in [
            (8, 2, 1, 4),
            (8, 2, 2, 4),
            (8, 2, 8, 4),
            (8, 2, 1, 2),
            (64, 6, 4, 8),
            (128, 8, 1, 8),
            (128, 8, 16, 8),
            (256, 8, 32, 8),
            (256, 8, 256, 8),
        ] {
            let model =
                busiest_rank_experts_touched(total as f64, k as f64, tokens as f64, ranks as f64);
            let truth = sampled(total, k, tokens, ranks, 4000);
            let err = (model - truth).abs() / truth;
            assert!(
                err < 0.05,
                "E{total} k{k} T{tokens} G{ranks}: model {model:.3}, sampled {truth:.3}"
            );
        }
    }

    #[test]
    fn limits() {
        // One token of Mixtral over 4 GPUs: the busiest streams at least one expert.
        let one = busiest_rank_experts_touched(8.0, 2.0, 1.0, 4.0);
        assert!(one > 1.0 && one < 1.2, "{one}");
        // Without expert parallelism: the mean count of experts touched.
        assert!((busiest_rank_experts_touched(8.0, 2.0, 1.0, 1.0) - 2.0).abs() < 1e-12);
        // Many tokens touch every local expert.
        assert!((busiest_rank_experts_touched(256.0, 8.0, 1e5, 8.0) - 32.0).abs() < 1e-9);
        assert_eq!(busiest_rank_experts_touched(8.0, 2.0, 0.0, 4.0), 0.0);
        // Never fewer than the mean.
        for t in [1.0, 3.0, 10.0, 40.0] {
            let mean = 8.0 * (1.0 - (1.0f64 - 2.0 / 8.0).powf(t)) / 4.0;
            assert!(busiest_rank_experts_touched(8.0, 2.0, t, 4.0) >= mean);
        }
    }
}
