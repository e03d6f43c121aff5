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

/// The fast-scan sums of a block of 32 codes (see `scalar::fastscan`): two
/// groups per step, one 16-entry table per 128-bit lane, looked up for the
/// low and the high pieces of 16 bytes by one shuffle each, and added as
/// 16-bit sums (even and odd bytes apart), flushed to 32 bits every 256
/// groups, before a sum of up to 255 per group could overflow.
#[target_feature(enable = "avx2")]
fn fastscan_avx2(block: &[u8], tables: &[u8]) -> [u32; 32] {
    let groups = (tables.len() / 16).min(block.len() / 16) & !1;
    let low_bits = _mm256_set1_epi8(0x0f);
    let low_bytes = _mm256_set1_epi16(0xff);
    let mut sums = [0u32; 32];
    let mut group = 0;
    while group < groups {
        let end = (group + 256).min(groups);
        let [mut low_even, mut low_odd, mut high_even, mut high_odd] = [_mm256_setzero_si256(); 4];
        while group < end {
            // SAFETY: `group + 2 <= groups`, and both slices hold at least
            // `16 × groups` bytes, so the 32 bytes read from each at
            // `16 × group` are inside it; `loadu` needs no alignment.
            let (pieces, table) = unsafe {
                (
                    _mm256_loadu_si256(block.as_ptr().add(group * 16).cast()),
                    _mm256_loadu_si256(tables.as_ptr().add(group * 16).cast()),
                )
            };
            let low = _mm256_shuffle_epi8(table, _mm256_and_si256(pieces, low_bits));
            let high = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(pieces, 4), low_bits));
            low_even = _mm256_add_epi16(low_even, _mm256_and_si256(low, low_bytes));
            low_odd = _mm256_add_epi16(low_odd, _mm256_srli_epi16(low, 8));
            high_even = _mm256_add_epi16(high_even, _mm256_and_si256(high, low_bytes));
            high_odd = _mm256_add_epi16(high_odd, _mm256_srli_epi16(high, 8));
            group += 2;
        }
        // Lane 0 summed the even groups, lane 1 the odd ones, of the same codes.
        let (low_sums, high_sums) = sums.split_at_mut(16);
        for (sums, even, odd) in [(low_sums, low_even, low_odd), (high_sums, high_even, high_odd)] {
            let (mut e, mut o) = ([0u16; 16], [0u16; 16]);
            // SAFETY: each array holds exactly the 32 bytes stored.
            unsafe {
                _mm256_storeu_si256(e.as_mut_ptr().cast(), even);
                _mm256_storeu_si256(o.as_mut_ptr().cast(), odd);
            }
            for (k, pair) in sums.chunks_exact_mut(2).enumerate() {
                pair[0] += u32::from(e[k]) + u32::from(e[k + 8]);
                pair[1] += u32::from(o[k]) + u32::from(o[k + 8]);
            }
        }
    }
    sums
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

fn fastscan(block: &[u8], tables: &[u8]) -> [u32; 32] {
    // SAFETY: as in `dot`: reachable only once AVX2 is detected.
    unsafe { fastscan_avx2(block, tables) }
}

/// The AVX2 + FMA kernels (with POPCNT for bits and F16C for split
/// normals), when this CPU has all four.
pub(super) fn kernels() -> Option<Kernels> {
    let supported = std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
        && std::is_x86_feature_detected!("popcnt")
        && std::is_x86_feature_detected!("f16c");
    supported.then_some(Kernels { name: "avx2+fma", dot, dot_f16, l2_squared, l1, hamming, fastscan })
}

/// Prefetches the first two cache lines of `bytes` into all cache levels
/// (the hardware's prefetcher follows the rest once they are read: asking
/// for every line of a vector filled the CPU's miss buffers and stalled it,
/// measured on pypi-minilm).
#[inline]
pub(super) fn prefetch(bytes: &[u8], lines: usize) {
    for line in bytes.chunks(64).take(lines) {
        // SAFETY: PREFETCHT0 is SSE, which every x86-64 CPU has; it reads
        // nothing into the program and never faults, whatever the address
        // (here the start of a line of a live slice).
        unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) };
    }
}
