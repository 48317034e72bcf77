//! How long a replica takes to (re)start: engine initialisation plus loading its
//! weights from storage (`perf_model/startup.toml`, each figure with its source). Used
//! for the restart after a failure ([`crate::sim::failures`]).

use crate::error::{Error, Result};
use crate::paths::DataPaths;
use crate::units::SimDuration;
use serde::Deserialize;

/// The start-up figures of `perf_model/startup.toml`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Startup {
    /// Checkpoint bytes per second from storage into GPU memory, for the whole model.
    pub weight_load_bytes_per_s: f64,
    /// Where that figure comes from.
    pub weight_load_source: String,
    /// Start-up time besides the weights, s.
    pub engine_init_s: f64,
    /// Where that figure comes from.
    pub engine_init_source: String,
}

impl Startup {
    /// Read `perf_model/startup.toml`.
    pub fn load(paths: &DataPaths) -> Result<Self> {
        let path = paths.perf_model.join("startup.toml");
        let s: Startup = crate::error::read_toml(&path)?;
        if !(s.weight_load_bytes_per_s.is_finite() && s.weight_load_bytes_per_s > 0.0) {
            return Err(Error::Config(format!(
                "{}: weight_load_bytes_per_s must be a positive number",
                path.display()
            )));
        }
        if !(s.engine_init_s.is_finite() && s.engine_init_s >= 0.0) {
            return Err(Error::Config(format!(
                "{}: engine_init_s must be a number of seconds ≥ 0",
                path.display()
            )));
        }
        Ok(s)
    }

    /// Time to start a replica whose model weighs `weight_bytes` in all.
    pub fn restart(&self, weight_bytes: f64) -> SimDuration {
        SimDuration::from_secs_f64(self.engine_init_s + weight_bytes / self.weight_load_bytes_per_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_is_the_init_plus_the_weights_at_the_storage_rate() {
        let s = Startup::load(&DataPaths::builtin()).unwrap();
        // Llama-3.1-8B in bf16: 16.06 GB.
        let t = s.restart(16.06e9).as_secs_f64();
        assert!((t - (s.engine_init_s + 16.06e9 / s.weight_load_bytes_per_s)).abs() < 1e-6);
        assert!(t > 54.0 && t < 70.0, "{t}");
    }
}
