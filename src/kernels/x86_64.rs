//! The kernels for x86-64 CPUs with AVX2 and FMA: sixteen lanes in two
//! 256-bit registers, unaligned loads straight from LMDB's bytes, fused
//! multiply-adds, then the same pairwise reduction and unfused tail as the
//! portable loop in `scalar.rs`. Bits are counted with the POPCNT
//! instruction and half-precision normals widened with F16C, which every
//! AVX2 CPU has.

use std::arch::x86_64::*;

use super::Kernels;
use super::scalar::{dot_term, f16_tail, hamming_words, l1_term, l2_term, tail};

/// Floats per iteration: two registers of eight.
const STEP: usize = 16;

/// Sums `term` over whole steps of `a` and `b` (as many floats as both
/// hold), then reduces the lanes pairwise; returns the sum and the number of
/// floats consumed. (Callable only where AVX2 and FMA are enabled: the
/// compiler holds callers to it.)
#[target_feature(enable = "avx2,fma")]
#[inline]
fn steps(a: &[u8], b: &[u8], term: impl Fn(__m256, __m256, __m256) -> __m256) -> (f32, usize) {
    let floats = a.len().min(b.len()) / 4;
    let whole = floats - floats % STEP;
    let (a, b) = (a.as_ptr().cast::<f32>(), b.as_ptr().cast::<f32>());
    let mut low = _mm256_setzero_ps();
    let mut high = _mm256_setzero_ps();
    let mut at = 0;
    while at < whole {
        // SAFETY: `at + STEP <= whole <= floats`, and both slices hold at
        // least `4 × floats` bytes, so the sixteen floats read from each
        // pointer at `at` are inside its slice; `loadu` needs no alignment.
        let (x0, y0, x1, y1) = unsafe {
            (
                _mm256_loadu_ps(a.add(at)),
                _mm256_loadu_ps(b.add(at)),
                _mm256_loadu_ps(a.add(at + 8)),
                _mm256_loadu_ps(b.add(at + 8)),
            )
        };
        low = term(low, x0, y0);
        high = term(high, x1, y1);
        at += STEP;
    }
    (reduce(low, high), whole)
}

/// Lane i plus lane i + 8, then i + 4, i + 2, i + 1: the scalar order.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn reduce(low: __m256, high: __m256) -> f32 {
    let eight = _mm256_add_ps(low, high);
    let four = _mm_add_ps(_mm256_castps256_ps128(eight), _mm256_extractf128_ps(eight, 1));
    let two = _mm_add_ps(four, _mm_movehl_ps(four, four));
    let one = _mm_add_ss(two, _mm_movehdup_ps(two));
    _mm_cvtss_f32(one)
}

/// The dot product of binary16 values `a` with `f32` values `b`: sixteen
/// halves widened by F16C per step, fused into the sums.
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_f16_avx2(a: &[u8], b: &[u8]) -> f32 {
    let values = (a.len() / 2).min(b.len() / 4);
    let whole = values - values % STEP;
    let (halves, floats) = (a.as_ptr().cast::<u16>(), b.as_ptr().cast::<f32>());
    let mut low = _mm256_setzero_ps();
    let mut high = _mm256_setzero_ps();
    let mut at = 0;
    while at < whole {
        // SAFETY: `at + STEP <= whole <= values`; `a` holds at least
        // `2 × values` bytes and `b` at least `4 × values`, so the sixteen
        // halves and sixteen floats read at `at` are inside their slices;
        // `loadu` needs no alignment.
        let (x0, y0, x1, y1) = unsafe {
            (
                _mm256_cvtph_ps(_mm_loadu_si128(halves.add(at).cast())),
                _mm256_loadu_ps(floats.add(at)),
                _mm256_cvtph_ps(_mm_loadu_si128(halves.add(at + 8).cast())),
                _mm256_loadu_ps(floats.add(at + 8)),
            )
        };
        low = _mm256_fmadd_ps(x0, y0, low);
        high = _mm256_fmadd_ps(x1, y1, high);
        at += STEP;
    }
    reduce(low, high) + f16_tail(&a[whole * 2..values * 2], &b[whole * 4..values * 4])
}

#[target_feature(enable = "avx2,fma")]
fn dot_avx2(a: &[u8], b: &[u8]) -> f32 {
    let (sum, done) = steps(a, b, |sum, x, y| _mm256_fmadd_ps(x, y, sum));
    sum + tail(&a[done * 4..], &b[done * 4..], dot_term)
}

#[target_feature(enable = "avx2,fma")]
fn l2_squared_avx2(a: &[u8], b: &[u8]) -> f32 {
    let (sum, done) = steps(a, b, |sum, x, y| {
        let d = _mm256_sub_ps(x, y);
        _mm256_fmadd_ps(d, d, sum)
    });
    sum + tail(&a[done * 4..], &b[done * 4..], l2_term)
}

#[target_feature(enable = "avx2,fma")]
fn l1_avx2(a: &[u8], b: &[u8]) -> f32 {
    let sign = _mm256_set1_ps(-0.0);
    let (sum, done) = steps(a, b, |sum, x, y| _mm256_add_ps(sum, _mm256_andnot_ps(sign, _mm256_sub_ps(x, y))));
    sum + tail(&a[done * 4..], &b[done * 4..], l1_term)
}

#[target_feature(enable = "popcnt")]
fn hamming_popcnt(a: &[u8], b: &[u8]) -> u32 {
    hamming_words(a, b)
}

fn dot(a: &[u8], b: &[u8]) -> f32 {
    // SAFETY: this function is only reachable through the table `kernels`
    // returns, which it returns only when the CPU has AVX2 and FMA.
    unsafe { dot_avx2(a, b) }
}

fn dot_f16(a: &[u8], b: &[u8]) -> f32 {
    // SAFETY: reachable only once AVX2, FMA and F16C are detected.
    unsafe { dot_f16_avx2(a, b) }
}

fn l2_squared(a: &[u8], b: &[u8]) -> f32 {
    // SAFETY: as in `dot`: reachable only once AVX2 and FMA are detected.
    unsafe { l2_squared_avx2(a, b) }
}

fn l1(a: &[u8], b: &[u8]) -> f32 {
    // SAFETY: as in `dot`: reachable only once AVX2 and FMA are detected.
    unsafe { l1_avx2(a, b) }
}

fn hamming(a: &[u8], b: &[u8]) -> u32 {
    // SAFETY: reachable only once POPCNT is detected, with AVX2 and FMA.
    unsafe { hamming_popcnt(a, b) }
}

/// The AVX2 + FMA kernels (with POPCNT for bits and F16C for split
/// normals), when this CPU has all four.
pub(super) fn kernels() -> Option<Kernels> {
    let supported = std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
        && std::is_x86_feature_detected!("popcnt")
        && std::is_x86_feature_detected!("f16c");
    supported.then_some(Kernels { name: "avx2+fma", dot, dot_f16, l2_squared, l1, hamming })
}
