//! What serving costs: GPUs rented by the hour plus, optionally, the electricity they
//! draw; per run, per hour and per million tokens.

use crate::error::{Error, Result};
use serde::Serialize;

/// Electricity: its price and, optionally, the power each GPU draws (otherwise the
/// device's rated power, its TDP, is taken).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct EnergyPrice {
    /// USD per kilowatt-hour.
    pub usd_per_kwh: f64,
    /// Power per GPU, W (None: the device's TDP).
    pub power_w_per_gpu: Option<f64>,
}

impl EnergyPrice {
    /// A checked price (`--price-per-kwh` ≥ 0, `--power-w` > 0, both finite).
    pub fn new(usd_per_kwh: f64, power_w_per_gpu: Option<f64>) -> Result<Self> {
        if !(usd_per_kwh.is_finite() && usd_per_kwh >= 0.0) {
            return Err(Error::input(
                "<command line>",
                Some("--price-per-kwh"),
                format!("must be a finite number of USD ≥ 0, got {usd_per_kwh}"),
            ));
        }
        if let Some(p) = power_w_per_gpu {
            if !(p.is_finite() && p > 0.0) {
                return Err(Error::input(
                    "<command line>",
                    Some("--power-w"),
                    format!("must be a finite number of watts above 0, got {p}"),
                ));
            }
        }
        Ok(EnergyPrice {
            usd_per_kwh,
            power_w_per_gpu,
        })
    }

    /// The power one GPU draws, W: the given figure, else `tdp_w`.
    pub fn power_w(&self, tdp_w: Option<f64>) -> Option<f64> {
        self.power_w_per_gpu.or(tdp_w)
    }

    /// Electricity per GPU-hour, USD; None when no power figure is known.
    pub fn usd_per_gpu_hour(&self, tdp_w: Option<f64>) -> Option<f64> {
        self.power_w(tdp_w).map(|w| w / 1000.0 * self.usd_per_kwh)
    }
}

/// USD per million tokens of a fleet costing `usd_per_hour` that produces
/// `tokens_per_s`; None when it produces nothing.
pub fn usd_per_million_tokens(usd_per_hour: f64, tokens_per_s: f64) -> Option<f64> {
    (tokens_per_s > 0.0).then(|| usd_per_hour / (tokens_per_s * 3600.0) * 1e6)
}

/// What a fleet costs by the hour: its GPUs, their rent and (optionally) electricity.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FleetPrice {
    /// GPUs in the fleet.
    pub gpus: u32,
    /// Rent of the whole fleet, USD per hour.
    pub rent_usd_per_hour: f64,
    /// Electricity of the whole fleet: (USD per hour, power drawn in W).
    pub energy: Option<(f64, f64)>,
}

impl FleetPrice {
    /// Add `gpus` GPUs rented at `rent_usd_per_gpu_hour`, drawing `power_w` each at
    /// `energy`'s price (None: no electricity counted).
    pub fn add(
        &mut self,
        gpus: u32,
        rent_usd_per_gpu_hour: f64,
        energy: Option<(&EnergyPrice, f64)>,
    ) {
        self.gpus += gpus;
        self.rent_usd_per_hour += f64::from(gpus) * rent_usd_per_gpu_hour;
        if let Some((e, w)) = energy {
            let (usd, watts) = self.energy.unwrap_or((0.0, 0.0));
            let fleet_w = f64::from(gpus) * w;
            self.energy = Some((usd + fleet_w / 1000.0 * e.usd_per_kwh, watts + fleet_w));
        }
    }

    /// The cost of running the fleet for `duration_s`, producing `output_tokens` of
    /// `total_tokens`.
    pub fn run_cost(&self, duration_s: f64, output_tokens: u64, total_tokens: u64) -> RunCost {
        RunCost::new(
            self.gpus,
            self.rent_usd_per_hour,
            self.energy,
            duration_s,
            output_tokens,
            total_tokens,
        )
    }
}

/// What a run cost (`summary.json` → `cost`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunCost {
    /// GPUs in the fleet.
    pub gpus: u32,
    /// Rent of the whole fleet, USD per hour.
    pub rent_usd_per_hour: f64,
    /// Electricity of the whole fleet, USD per hour (0 without `--price-per-kwh`).
    pub energy_usd_per_hour: f64,
    /// Power the fleet draws, W (None without `--price-per-kwh`).
    pub power_w: Option<f64>,
    /// GPU-hours the run took (GPUs × its duration).
    pub gpu_hours: f64,
    /// The run's cost, USD.
    pub usd: f64,
    /// USD per million output tokens.
    pub usd_per_million_output_tokens: Option<f64>,
    /// USD per million tokens in and out.
    pub usd_per_million_total_tokens: Option<f64>,
}

impl RunCost {
    /// The cost of running `gpus` GPUs (rent `rent_usd_per_hour` and electricity
    /// `energy_usd_per_hour` for the fleet, drawing `power_w`) for `duration_s`, in
    /// which `output_tokens` were produced of `total_tokens` processed.
    pub fn new(
        gpus: u32,
        rent_usd_per_hour: f64,
        energy: Option<(f64, f64)>,
        duration_s: f64,
        output_tokens: u64,
        total_tokens: u64,
    ) -> Self {
        let (energy_usd_per_hour, power_w) = match energy {
            Some((usd, w)) => (usd, Some(w)),
            None => (0.0, None),
        };
        let per_hour = rent_usd_per_hour + energy_usd_per_hour;
        let hours = duration_s / 3600.0;
        let usd = per_hour * hours;
        let per_million = |tokens: u64| (tokens > 0).then(|| usd / tokens as f64 * 1e6);
        RunCost {
            gpus,
            rent_usd_per_hour,
            energy_usd_per_hour,
            power_w,
            gpu_hours: f64::from(gpus) * hours,
            usd,
            usd_per_million_output_tokens: per_million(output_tokens),
            usd_per_million_total_tokens: per_million(total_tokens),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_cost_by_hand() {
        // 8 GPUs at 2 USD/h rent and 700 W at 0.10 USD/kWh (0.07 USD/h each) for 30
        // minutes: 8 × 2.07 × 0.5 = 8.28 USD; 1.8 M output tokens → 4.6 USD per million.
        let e = EnergyPrice::new(0.10, Some(700.0)).unwrap();
        let energy = e.usd_per_gpu_hour(None).unwrap();
        assert!((energy - 0.07).abs() < 1e-12);
        let c = RunCost::new(
            8,
            16.0,
            Some((8.0 * energy, 5600.0)),
            1800.0,
            1_800_000,
            3_600_000,
        );
        assert!((c.usd - 8.28).abs() < 1e-9, "{c:?}");
        assert!((c.gpu_hours - 4.0).abs() < 1e-12);
        assert!((c.usd_per_million_output_tokens.unwrap() - 4.6).abs() < 1e-9);
        assert!((c.usd_per_million_total_tokens.unwrap() - 2.3).abs() < 1e-9);
        assert_eq!(c.power_w, Some(5600.0));
        // The device's TDP when no power is given; none known, no energy figure.
        let e = EnergyPrice::new(0.2, None).unwrap();
        assert_eq!(e.usd_per_gpu_hour(Some(1000.0)), Some(0.2));
        assert_eq!(e.usd_per_gpu_hour(None), None);
        assert_eq!(usd_per_million_tokens(3.6, 1000.0), Some(1.0));
        assert_eq!(usd_per_million_tokens(3.6, 0.0), None);
    }

    #[test]
    fn bad_prices_name_their_flag() {
        assert!(EnergyPrice::new(-1.0, None)
            .unwrap_err()
            .to_string()
            .contains("--price-per-kwh"));
        assert!(EnergyPrice::new(0.1, Some(0.0))
            .unwrap_err()
            .to_string()
            .contains("--power-w"));
        assert!(EnergyPrice::new(f64::NAN, None).is_err());
    }
}
