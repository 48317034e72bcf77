//! Memory per GPU of an estimated batch: the memory plan's fixed parts and the KV
//! cache the batch holds at its longest.

use crate::estimate::BatchSpec;
use crate::setup::ReplicaSetup;
use crate::units::BYTES_PER_GIB;
use serde::Serialize;

/// Memory per GPU, GiB, with every request of the batch at its full length
/// (`input_len + output_len − 1` tokens in the KV cache, whole blocks).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BatchMemory {
    /// Weights on the most loaded GPU.
    pub weights_gib: f64,
    /// The KV cache the batch needs at its longest.
    pub kv_gib: f64,
    /// The activation peak the memory plan reserves (vLLM's profiling pass).
    pub activations_gib: f64,
    /// Runtime overhead outside PyTorch's allocator (CUDA context, NCCL, graphs).
    pub overhead_gib: f64,
    /// Sum of the four.
    pub total_gib: f64,
    /// The GPU's usable memory (capacity after the driver's reserve).
    pub capacity_gib: f64,
    /// KV blocks the batch needs at its longest.
    pub kv_blocks_needed: u64,
    /// KV blocks the engine's cache holds.
    pub kv_blocks_available: u64,
    /// Whether the whole batch's KV fits in the cache at once (else the engine
    /// preempts and recomputes).
    pub fits: bool,
}

impl BatchMemory {
    /// The memory of `batch` on `setup`'s replica.
    pub fn of(setup: &ReplicaSetup, batch: BatchSpec) -> Self {
        let p = &setup.memory;
        let e = &setup.engine;
        let tokens = (u64::from(batch.input_len) + u64::from(batch.output_len)).saturating_sub(1);
        let per_request = tokens.div_ceil(u64::from(e.block_size.max(1)));
        let needed = per_request.saturating_mul(u64::from(batch.batch_size));
        let block_bytes = f64::from(e.block_size) * p.kv_bytes_per_token_per_gpu;
        let gib = |b: f64| b / BYTES_PER_GIB;
        let kv = needed as f64 * block_bytes;
        let (w, a, o) = (
            p.weight_bytes_per_gpu,
            p.activation_bytes_per_gpu,
            p.overhead_bytes_per_gpu,
        );
        BatchMemory {
            weights_gib: gib(w),
            kv_gib: gib(kv),
            activations_gib: gib(a),
            overhead_gib: gib(o),
            total_gib: gib(w + kv + a + o),
            capacity_gib: gib(p.gpu_memory_bytes),
            kv_blocks_needed: needed,
            kv_blocks_available: u64::from(e.num_gpu_blocks),
            fits: needed <= u64::from(e.num_gpu_blocks),
        }
    }
}
