//! Accelerator and cluster specifications loaded from `perf_model/hardware/`.
