//! Linear operators (GEMMs) of a composition: which measurement times each one. With a
//! serving stack that names its kernel generation, a profile of that generation, else
//! the GPU's GEMM grid measured through an engine of that generation; then any profile
//! with the same weight shape; then the GEMM law fitted on the GPU's profiles.

use super::{Ctx, MEASURED_ELEMENT_BYTES};
use crate::dtype::DType;
use crate::model::{LinearOp, TpSplit};
use crate::perf::measured::gemm::GemmOperand;
use crate::perf::measured::ops::Curve;
use crate::perf::measured::profile::{MeasuredOp, ModelProfile, OpKind};

/// Per-GPU `(in, out)` of a linear operator.
fn per_gpu(op: &LinearOp, tp: u32) -> (f64, f64) {
    let t = f64::from(tp);
    let (i, o) = (op.in_features as f64, op.out_features as f64);
    match op.tp_split {
        TpSplit::Column => (i, (o / t).ceil()),
        TpSplit::Row => ((i / t).ceil(), o),
        TpSplit::Replicated => (i, o),
    }
}

impl Ctx<'_> {
    /// A measured table for an operator of `kind` with per-GPU shape `(k, n)`: this
    /// model's profile first, then any profile on the GPU. Tables that sum separately
    /// launched kernels (v0's q, k, v) are not used as such: vLLM runs one fused GEMM,
    /// which the fitted law (that saw those tables with their kernel count) predicts.
    /// `only` keeps the profiles it accepts.
    pub(super) fn table_for(
        &self,
        kind: OpKind,
        k: f64,
        n: f64,
        only: Option<&dyn Fn(&ModelProfile) -> bool>,
    ) -> Option<(&MeasuredOp, String)> {
        let matches = |o: &&MeasuredOp| {
            o.kind == kind && o.in_features == k && o.out_features == n && o.kernels == 1.0
        };
        let accepted = |m: &ModelProfile| only.is_none_or(|f| f(m));
        if let Some((m, t)) = self.exact.filter(|(m, _)| accepted(m)) {
            if let Some(o) = t.ops.iter().find(matches) {
                return Some((o, format!("measured ({} TP{})", m.label(), t.tp)));
            }
        }
        self.inp
            .gpu
            .all_ops()
            .find(|(m, _, o)| accepted(m) && matches(o))
            .map(|(m, t, o)| {
                (
                    o,
                    format!("measured, same shape ({} TP{})", m.label(), t.tp),
                )
            })
    }

    /// With a stack that names its kernel generation: the operator profile of that
    /// generation (this model's, or another of the same shape), else — when the GPU's
    /// profiles are of another generation — the GEMM grid measured through an engine of
    /// the stack's generation, interpolated to `(k, n)`. `None`: the usual order.
    pub(super) fn same_generation_linear(
        &mut self,
        component: &'static str,
        kind: OpKind,
        k: f64,
        n: f64,
    ) -> Option<Curve> {
        let generation = self.d.stack.kernel_generation?;
        let same = |m: &ModelProfile| m.meta.kernel_generation == generation;
        if let Some((o, label)) = self.table_for(kind, k, n, Some(&same)) {
            let table = o.table.clone();
            self.note(component, label);
            return Some(Curve::Table {
                table,
                x_scale: 1.0,
            });
        }
        let grid = self
            .inp
            .engine_gemm
            .filter(|g| g.generation == generation)?;
        let table = grid.table(k, n)?;
        self.note(
            component,
            format!(
                "GEMM measured through the engine's linear layer, interpolated to this shape ({})",
                grid.source
            ),
        );
        Some(Curve::Table {
            table,
            x_scale: 1.0,
        })
    }

    pub(super) fn linear_curve(&mut self, component: &'static str, op: &LinearOp) -> Curve {
        let d = self.d;
        let (k, n) = per_gpu(op, d.tp);
        let wdt = d.model.op_weight_dtype(op, d.weight_dtype);
        let w = wdt.bytes_per_element();
        let a = d.act_dtype.bytes_per_element();
        let sixteen = w == MEASURED_ELEMENT_BYTES && a == MEASURED_ELEMENT_BYTES;
        let kind = if op.name == "lm_head" {
            OpKind::LmHead
        } else {
            OpKind::Linear
        };
        if wdt == DType::Fp8 && a == MEASURED_ELEMENT_BYTES {
            if let Some(grid) = self.inp.engine_gemm_fp8 {
                if let Some(table) = grid.table(k, n) {
                    self.note(
                        component,
                        format!(
                            "FP8 GEMM measured through the engine's linear layer, interpolated to this shape ({})",
                            grid.source
                        ),
                    );
                    return Curve::Table {
                        table,
                        x_scale: 1.0,
                    };
                }
            }
        }
        if sixteen {
            if let Some(curve) = self.same_generation_linear(component, kind, k, n) {
                return curve;
            }
            if let Some((o, label)) = self.table_for(kind, k, n, None) {
                let curve = Curve::Table {
                    table: o.table.clone(),
                    x_scale: 1.0,
                };
                self.note(component, label);
                return curve;
            }
        }
        self.law_curve(component, op)
    }

    pub(super) fn law_curve(&mut self, component: &'static str, op: &LinearOp) -> Curve {
        let d = self.d;
        let (k, n) = per_gpu(op, d.tp);
        let wdt = d.model.op_weight_dtype(op, d.weight_dtype);
        let w = wdt.bytes_per_element();
        let a = d.act_dtype.bytes_per_element();
        // FP8 (W8A8) and NVFP4 (W4A4) take the law fitted on the FP8 grid where there is
        // one (FP4 at the tensor-peak ratio of FP4 to FP8): those kernels reach a smaller
        // share of their peak than 16-bit ones. Otherwise formats that run at their own
        // tensor rate (W8A8, W4A4) scale the 16-bit law's compute term: FP8 and NVFP4 by
        // what FP8 gains over 16-bit where the GPU's grids of another engine measure it
        // (`fp8_rate`), else by the peak ratio; weight-only formats compute at the
        // 16-bit rate.
        let fp8 = match wdt {
            DType::Fp8 | DType::Nvfp4 => self.fp8_gemm_law(),
            _ => None,
        };
        let (law, label, compute_scale) = match fp8 {
            Some((law, label)) => {
                let scale = (d.peak_flops(wdt) / d.peak_flops(DType::Fp8)).max(1.0);
                (law, label, scale)
            }
            None => {
                let measured = self
                    .inp
                    .fp8_rate
                    .filter(|_| matches!(wdt, DType::Fp8 | DType::Nvfp4));
                let scale = match measured {
                    Some(r) => r.ratio * (d.peak_flops(wdt) / d.peak_flops(DType::Fp8)).max(1.0),
                    None if matches!(wdt, DType::Fp8 | DType::Int8 | DType::Nvfp4) => {
                        (d.peak_flops(wdt) / d.peak_flops(d.act_dtype)).max(1.0)
                    }
                    None => 1.0,
                };
                let (law, mut label) = self.gemm_law();
                if let Some(r) = measured {
                    label = format!("{label} × {}", r.label);
                }
                (law, label, scale)
            }
        };
        self.note(component, label);
        Curve::Gemm {
            law,
            op: GemmOperand {
                k,
                n,
                weight_bytes: w,
                act_bytes: a,
                compute_scale,
            },
        }
    }
}
