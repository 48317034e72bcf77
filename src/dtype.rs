//! Numeric formats of weights, activations and the KV cache.
//!
//! A [`DType`] knows its storage size and which tensor-core rate of a device applies to
//! math in it. Group-quantized formats (AWQ/GPTQ int4, MXFP4, block-scaled FP8) carry
//! per-group scales, whose overhead is part of [`DType::bits_per_element`].
//!
//! Two 4-bit floating-point formats differ in what they compute in: MXFP4 weights are
//! dequantized to 16 bits (weight-only, as vLLM runs gpt-oss), while NVFP4 checkpoints
//! (NVIDIA ModelOpt) quantize weights *and* activations, so their matrix math runs on
//! the FP4 tensor cores of Blackwell GPUs (`dense_fp4_tflops` in the device files).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A numeric storage format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// IEEE single precision, 4 bytes.
    Fp32,
    /// bfloat16, 2 bytes.
    Bf16,
    /// IEEE half precision, 2 bytes.
    Fp16,
    /// 8-bit float (e4m3/e5m2), 1 byte, per-tensor scale (negligible overhead).
    Fp8,
    /// 8-bit integer weights with per-channel scales (negligible overhead).
    Int8,
    /// 4-bit integer weights (AWQ/GPTQ), group size 128 with an fp16 scale and a 4-bit
    /// zero point per group: 4 + (16 + 4)/128 ≈ 4.16 bits per weight.
    Int4,
    /// OCP MX FP4 (e2m1) with one 8-bit shared exponent per 32 elements: 4.25 bits.
    Mxfp4,
    /// NVIDIA NVFP4 (e2m1) with one FP8 (e4m3) scale per 16 elements (plus one fp32
    /// scale per tensor, negligible): 4.5 bits. Weights and activations (W4A4): math
    /// runs at the device's FP4 tensor rate where it has one.
    Nvfp4,
}

impl DType {
    /// All formats, in a fixed order (for listings and tests).
    pub const ALL: [DType; 8] = [
        DType::Fp32,
        DType::Bf16,
        DType::Fp16,
        DType::Fp8,
        DType::Int8,
        DType::Int4,
        DType::Mxfp4,
        DType::Nvfp4,
    ];

    /// Storage bits per element, including group-scale overhead.
    pub fn bits_per_element(self) -> f64 {
        match self {
            DType::Fp32 => 32.0,
            DType::Bf16 | DType::Fp16 => 16.0,
            DType::Fp8 | DType::Int8 => 8.0,
            // 128-element groups, fp16 scale + 4-bit zero point.
            DType::Int4 => 4.0 + (16.0 + 4.0) / 128.0,
            // 32-element blocks with an 8-bit (E8M0) shared scale.
            DType::Mxfp4 => 4.0 + 8.0 / 32.0,
            // 16-element blocks with an 8-bit (E4M3) scale.
            DType::Nvfp4 => 4.0 + 8.0 / 16.0,
        }
    }

    /// Storage bytes per element, including group-scale overhead.
    pub fn bytes_per_element(self) -> f64 {
        self.bits_per_element() / 8.0
    }

    /// The format that matrix math runs in when weights are stored as `self` and
    /// activations are 16-bit: weight-only int4/mxfp4 dequantize to 16-bit and run at the
    /// 16-bit rate; fp8, int8 (W8A8) and nvfp4 (W4A4) run at their own rate.
    pub fn compute_dtype(self) -> DType {
        match self {
            DType::Int4 | DType::Mxfp4 => DType::Bf16,
            other => other,
        }
    }

    /// The canonical lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            DType::Fp32 => "fp32",
            DType::Bf16 => "bf16",
            DType::Fp16 => "fp16",
            DType::Fp8 => "fp8",
            DType::Int8 => "int8",
            DType::Int4 => "int4",
            DType::Mxfp4 => "mxfp4",
            DType::Nvfp4 => "nvfp4",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DType {
    type Err = String;
    /// Accepts the names vLLM, HuggingFace and PyTorch use: `float32`, `bfloat16`,
    /// `half`, `float16`, `fp8`, `fp8_e4m3`, `fp8_e5m2`, `int8`, `awq`, `gptq`, `int4`,
    /// `mxfp4`, `nvfp4` (vLLM's `modelopt_fp4`), and the short forms.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fp32" | "float32" | "float" | "f32" => Ok(DType::Fp32),
            "bf16" | "bfloat16" => Ok(DType::Bf16),
            "fp16" | "float16" | "half" | "f16" => Ok(DType::Fp16),
            "fp8" | "fp8_e4m3" | "fp8_e5m2" | "float8" | "e4m3" | "fbgemm_fp8" => Ok(DType::Fp8),
            "int8" | "w8a8" | "smoothquant" | "bitsandbytes8" => Ok(DType::Int8),
            "int4" | "awq" | "gptq" | "awq_marlin" | "gptq_marlin" | "w4a16" => Ok(DType::Int4),
            "mxfp4" | "fp4" => Ok(DType::Mxfp4),
            "nvfp4" | "modelopt_fp4" => Ok(DType::Nvfp4),
            other => Err(format!(
                "unknown dtype `{other}`; expected one of fp32, bf16, fp16, fp8, int8, int4 (awq/gptq), mxfp4, nvfp4"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(DType::Bf16.bytes_per_element(), 2.0);
        assert_eq!(DType::Fp8.bytes_per_element(), 1.0);
        assert!((DType::Mxfp4.bits_per_element() - 4.25).abs() < 1e-12);
        assert_eq!(DType::Nvfp4.bytes_per_element(), 0.5625);
        assert_eq!(DType::Nvfp4.compute_dtype(), DType::Nvfp4);
        assert_eq!(DType::Mxfp4.compute_dtype(), DType::Bf16);
        assert!(DType::Int4.bits_per_element() > 4.0 && DType::Int4.bits_per_element() < 4.25);
    }

    #[test]
    fn parses_vllm_names() {
        assert_eq!("bfloat16".parse::<DType>().unwrap(), DType::Bf16);
        assert_eq!("half".parse::<DType>().unwrap(), DType::Fp16);
        assert_eq!("AWQ".parse::<DType>().unwrap(), DType::Int4);
        assert_eq!("fp8_e5m2".parse::<DType>().unwrap(), DType::Fp8);
        assert_eq!("modelopt_fp4".parse::<DType>().unwrap(), DType::Nvfp4);
        assert!("int3".parse::<DType>().is_err());
        for d in DType::ALL {
            assert_eq!(d.name().parse::<DType>().unwrap(), d);
        }
    }
}
