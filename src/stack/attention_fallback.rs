//! vLLM V0's fallback from FlashAttention to its own paged-attention decode kernel.
//!
//! vLLM 0.5–0.6 pick an attention backend per engine (`vllm/attention/selector.py`):
//! FlashAttention unless the model has a sliding window (until 0.6.4), the KV cache is
//! FP8, the KV block size is not a multiple of 16, or the `vllm_flash_attn` package is
//! missing (it shipped x86-64 wheels only until 0.6.2 built it into vLLM). The
//! fallback, XFORMERS, decodes with vLLM's paged-attention kernel, which runs a thread
//! block per query head and reads the key and value head in each: a grouped-query model
//! reads its KV cache once per query head, the repeats partly from L2.

use super::version;
use serde::Serialize;

/// When a stack's engine decodes with its own paged-attention kernel instead of
/// FlashAttention, and what that kernel's repeated reads cost.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttentionFallback {
    /// A model with a sliding window falls back in versions before this one (none: no
    /// such rule).
    pub sliding_window_until: Option<String>,
    /// An FP8 KV cache falls back.
    pub fp8_kv_cache: bool,
    /// A KV block size that is not a multiple of this falls back (none: no such rule).
    pub block_size_multiple_of: Option<u32>,
    /// FlashAttention's package exists for x86-64 hosts only before this version
    /// (none: no such rule): other hosts fall back.
    pub x86_64_only_until: Option<String>,
    /// Each read of a key/value head after the first (one per further query head of
    /// its group) costs this fraction of the first, for the KV that does not fit in
    /// the GPU's L2 cache.
    pub repeat_read_fraction: f64,
    /// Where the rules and the figure come from.
    pub source: String,
}

/// What a deployment's engine is, as the fallback rules read it.
#[derive(Clone, Copy, Debug)]
pub struct BackendInputs<'a> {
    /// The engine's version, where known (unknown: every rule applies).
    pub version: Option<&'a str>,
    /// Some layer of the model attends over a sliding window.
    pub sliding_window: bool,
    /// The KV cache is FP8.
    pub fp8_kv_cache: bool,
    /// The KV cache's block size, tokens.
    pub block_size: u32,
    /// The host CPU's instruction set (`x86_64`, `aarch64`).
    pub host_cpu_arch: &'a str,
}

impl AttentionFallback {
    /// Why `e` decodes with the fallback kernel, or None when it runs FlashAttention.
    pub fn reason(&self, e: &BackendInputs<'_>) -> Option<&'static str> {
        // A rule given by the version it ends at holds for every earlier or unknown one.
        let holds = |until: &Option<String>| {
            until
                .as_deref()
                .is_some_and(|u| !version::reached(e.version, Some(u)))
        };
        if e.sliding_window && holds(&self.sliding_window_until) {
            Some("the model's sliding window")
        } else if e.fp8_kv_cache && self.fp8_kv_cache {
            Some("an FP8 KV cache")
        } else if self
            .block_size_multiple_of
            .is_some_and(|m| m > 0 && e.block_size % m != 0)
        {
            Some("a KV block size FlashAttention does not take")
        } else if e.host_cpu_arch != "x86_64" && holds(&self.x86_64_only_until) {
            Some("no FlashAttention package for the host's CPU")
        } else {
            None
        }
    }

    /// This kernel on a GPU with `l2_bytes` of L2 cache.
    pub fn on_gpu(&self, l2_bytes: f64) -> PerQueryHeadReads {
        PerQueryHeadReads {
            repeat_read_fraction: self.repeat_read_fraction,
            l2_bytes,
        }
    }
}

/// A decode kernel that reads each key/value head once per query head using it, on one
/// GPU: vLLM's paged-attention kernel (the V0 fallback here; through HIP, the ROCm
/// build's `[paged_attention] reads_kv_per_query_head`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PerQueryHeadReads {
    /// Cost of each read of a key/value head after the first, as a fraction of the
    /// first, for the KV that does not fit in L2.
    pub repeat_read_fraction: f64,
    /// The GPU's L2 cache, bytes (0: none counted).
    pub l2_bytes: f64,
}

impl PerQueryHeadReads {
    /// Every repeated read at the cost of the first, none served by L2.
    pub const FROM_MEMORY: Self = Self {
        repeat_read_fraction: 1.0,
        l2_bytes: 0.0,
    };

    /// Decode KV traffic relative to one read of each key/value head, for `group`
    /// query heads per key/value head, when one layer's decodes hold `kv_bytes` of KV:
    /// the repeated reads cost nothing while that KV fits in L2 (vllm-project/vllm#1880's
    /// one sequence: the kernel as fast as FlashAttention) and
    /// [`PerQueryHeadReads::repeat_read_fraction`] of a read for the share that does not.
    pub fn read_factor(&self, group: f64, kv_bytes: f64) -> f64 {
        if kv_bytes <= 0.0 {
            return 1.0;
        }
        let beyond_l2 = ((kv_bytes - self.l2_bytes) / kv_bytes).max(0.0);
        1.0 + (group - 1.0).max(0.0) * self.repeat_read_fraction * beyond_l2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> AttentionFallback {
        AttentionFallback {
            sliding_window_until: Some("0.6.4".into()),
            fp8_kv_cache: true,
            block_size_multiple_of: Some(16),
            x86_64_only_until: Some("0.6.2".into()),
            repeat_read_fraction: 0.25,
            source: String::new(),
        }
    }

    fn inputs<'a>(version: Option<&'a str>, window: bool, arch: &'a str) -> BackendInputs<'a> {
        BackendInputs {
            version,
            sliding_window: window,
            fp8_kv_cache: false,
            block_size: 16,
            host_cpu_arch: arch,
        }
    }

    #[test]
    fn each_rule_holds_until_its_version() {
        let r = rules();
        assert_eq!(r.reason(&inputs(None, false, "x86_64")), None);
        assert!(r.reason(&inputs(None, true, "x86_64")).is_some());
        assert!(r.reason(&inputs(Some("0.6.3"), true, "x86_64")).is_some());
        assert_eq!(r.reason(&inputs(Some("0.6.4"), true, "x86_64")), None);
        assert!(r
            .reason(&inputs(Some("0.5.3.post1"), false, "aarch64"))
            .is_some());
        assert_eq!(r.reason(&inputs(Some("0.6.2"), false, "aarch64")), None);
        let fp8 = BackendInputs {
            fp8_kv_cache: true,
            ..inputs(Some("0.7.3"), false, "x86_64")
        };
        assert!(r.reason(&fp8).is_some());
        // Any version: a block of 8 tokens falls back, 16, 32 and 128 do not.
        let block = |b| BackendInputs {
            block_size: b,
            ..inputs(Some("0.6.6"), false, "x86_64")
        };
        assert!(r.reason(&block(8)).is_some());
        for b in [16, 32, 128] {
            assert_eq!(r.reason(&block(b)), None, "{b}");
        }
    }

    #[test]
    fn only_the_repeats_of_a_group_beyond_l2_cost_more() {
        let r = rules();
        // One layer's KV far beyond L2: each of a group of 4's three repeats at 0.25.
        let h100 = r.on_gpu(50e6);
        assert!((h100.read_factor(4.0, 1e12) - 1.75).abs() < 1e-3);
        assert_eq!(h100.read_factor(1.0, 1e12), 1.0);
        assert_eq!(h100.read_factor(4.0, 40e6), 1.0);
        // Half of it in L2: half the repeats' cost.
        assert_eq!(h100.read_factor(4.0, 100e6), 1.375);
        assert_eq!(r.on_gpu(0.0).read_factor(4.0, 0.0), 1.0);
        // Every repeat from memory: the group's reads in full.
        assert_eq!(PerQueryHeadReads::FROM_MEMORY.read_factor(8.0, 1e6), 8.0);
    }

    #[test]
    fn a_rule_without_a_version_is_off() {
        let r = AttentionFallback {
            sliding_window_until: None,
            x86_64_only_until: None,
            block_size_multiple_of: None,
            ..rules()
        };
        assert_eq!(r.reason(&inputs(None, true, "aarch64")), None);
        let block8 = BackendInputs {
            block_size: 8,
            ..inputs(None, false, "x86_64")
        };
        assert_eq!(r.reason(&block8), None);
    }
}
