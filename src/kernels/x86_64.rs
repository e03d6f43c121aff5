//! The kernels compiled for AVX2 and FMA: the portable loop, vectorised
//! eight floats to a register, with fused multiply-adds.

use super::Kernels;
use super::scalar::{dot_term, fold, l1_term, l2_term};

#[target_feature(enable = "avx2,fma")]
fn dot_avx2(a: &[u8], b: &[u8]) -> f32 {
    fold(a, b, |sum, x, y| x.mul_add(y, sum), dot_term)
}

#[target_feature(enable = "avx2,fma")]
fn l2_squared_avx2(a: &[u8], b: &[u8]) -> f32 {
    fold(
        a,
        b,
        |sum, x, y| {
            let d = x - y;
            d.mul_add(d, sum)
        },
        l2_term,
    )
}

#[target_feature(enable = "avx2,fma")]
fn l1_avx2(a: &[u8], b: &[u8]) -> f32 {
    fold(a, b, l1_term, l1_term)
}

fn dot(a: &[u8], b: &[u8]) -> f32 {
    // SAFETY: this function is only reachable through the table `kernels`
    // returns, which it returns only when the CPU has AVX2 and FMA.
    unsafe { dot_avx2(a, b) }
}

fn l2_squared(a: &[u8], b: &[u8]) -> f32 {
    // SAFETY: as in `dot`: reachable only once AVX2 and FMA are detected.
    unsafe { l2_squared_avx2(a, b) }
}

fn l1(a: &[u8], b: &[u8]) -> f32 {
    // SAFETY: as in `dot`: reachable only once AVX2 and FMA are detected.
    unsafe { l1_avx2(a, b) }
}

/// The AVX2 + FMA kernels, when this CPU has both.
pub(super) fn kernels() -> Option<Kernels> {
    let supported = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
    supported.then_some(Kernels { name: "avx2+fma", dot, l2_squared, l1 })
}
