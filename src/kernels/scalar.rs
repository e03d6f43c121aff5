//! The portable kernels, and the loop every implementation compiles.

use super::Kernels;
use crate::half::widen_finite;
use crate::vector::read_f32;

/// Values per chunk: sixteen independent sums, two AVX registers.
const LANES: usize = 16;
const CHUNK: usize = LANES * 4;

/// Folds `term` over the common prefix of two byte vectors: sixteen lanes
/// over whole chunks, reduced pairwise in a fixed order, plus one sum over
/// the tail. `term(sum, x, y)` returns the new sum.
#[inline(always)]
fn fold(a: &[u8], b: &[u8], term: impl Fn(f32, f32, f32) -> f32 + Copy) -> f32 {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let mut sums = [0.0f32; LANES];
    let chunks_a = a.chunks_exact(CHUNK);
    let chunks_b = b.chunks_exact(CHUNK);
    let (tail_a, tail_b) = (chunks_a.remainder(), chunks_b.remainder());
    for (x, y) in chunks_a.zip(chunks_b) {
        let x: [f32; LANES] = bytemuck::pod_read_unaligned(x);
        let y: [f32; LANES] = bytemuck::pod_read_unaligned(y);
        for lane in 0..LANES {
            sums[lane] = term(sums[lane], x[lane], y[lane]);
        }
    }
    reduce(sums) + tail(tail_a, tail_b, term)
}

/// Sums the lanes pairwise, in a fixed order: lane `i` plus lane `i + 8`,
/// then `i + 4`, `i + 2`, `i + 1`.
#[inline(always)]
fn reduce(mut sums: [f32; LANES]) -> f32 {
    let mut width = LANES / 2;
    while width > 0 {
        for lane in 0..width {
            sums[lane] += sums[lane + width];
        }
        width /= 2;
    }
    sums[0]
}

/// The binary16 value of the first two bytes of `chunk`, widened (finite
/// values exactly, like F16C).
#[inline(always)]
fn read_f16(chunk: &[u8]) -> f32 {
    widen_finite(u16::from_le_bytes([chunk[0], chunk[1]]))
}

/// The dot product of binary16 values `a` (a split normal) with `f32`
/// values `b`, over as many values as both hold: the lanes of `fold` over
/// whole chunks, then a plain sum over the tail.
fn dot_f16(a: &[u8], b: &[u8]) -> f32 {
    let len = (a.len() / 2).min(b.len() / 4);
    let (a, b) = (&a[..len * 2], &b[..len * 4]);
    let mut sums = [0.0f32; LANES];
    let chunks_a = a.chunks_exact(LANES * 2);
    let chunks_b = b.chunks_exact(CHUNK);
    let (tail_a, tail_b) = (chunks_a.remainder(), chunks_b.remainder());
    for (x, y) in chunks_a.zip(chunks_b) {
        let x: [u16; LANES] = bytemuck::pod_read_unaligned(x);
        let y: [f32; LANES] = bytemuck::pod_read_unaligned(y);
        for lane in 0..LANES {
            sums[lane] = dot_term(sums[lane], widen_finite(u16::from_le(x[lane])), y[lane]);
        }
    }
    reduce(sums) + f16_tail(tail_a, tail_b)
}

/// One plain sum over the values after the whole chunks of `dot_f16`;
/// every implementation sums its tail this way.
#[inline(always)]
pub(super) fn f16_tail(a: &[u8], b: &[u8]) -> f32 {
    a.chunks_exact(2).zip(b.chunks_exact(4)).fold(0.0, |sum, (x, y)| dot_term(sum, read_f16(x), read_f32(y)))
}

/// One plain sum of `term` over the floats of `a` and `b` (the part after
/// the whole chunks); every implementation sums its tail this way.
#[inline(always)]
pub(super) fn tail(a: &[u8], b: &[u8], term: impl Fn(f32, f32, f32) -> f32) -> f32 {
    let mut sum = 0.0;
    for (x, y) in a.chunks_exact(4).zip(b.chunks_exact(4)) {
        sum = term(sum, read_f32(x), read_f32(y));
    }
    sum
}

#[inline(always)]
pub(super) fn dot_term(sum: f32, x: f32, y: f32) -> f32 {
    sum + x * y
}

#[inline(always)]
pub(super) fn l2_term(sum: f32, x: f32, y: f32) -> f32 {
    let d = x - y;
    sum + d * d
}

#[inline(always)]
pub(super) fn l1_term(sum: f32, x: f32, y: f32) -> f32 {
    sum + (x - y).abs()
}

fn dot(a: &[u8], b: &[u8]) -> f32 {
    fold(a, b, dot_term)
}

fn l2_squared(a: &[u8], b: &[u8]) -> f32 {
    fold(a, b, l2_term)
}

fn l1(a: &[u8], b: &[u8]) -> f32 {
    fold(a, b, l1_term)
}

/// The number of differing bits over the common whole words of `a` and `b`;
/// every implementation compiles this loop, with or without the CPU's
/// popcount instruction.
#[inline(always)]
pub(super) fn hamming_words(a: &[u8], b: &[u8]) -> u32 {
    a.chunks_exact(8)
        .zip(b.chunks_exact(8))
        .map(|(x, y)| {
            let x = u64::from_le_bytes(bytemuck::pod_read_unaligned(x));
            let y = u64::from_le_bytes(bytemuck::pod_read_unaligned(y));
            (x ^ y).count_ones()
        })
        .sum()
}

fn hamming(a: &[u8], b: &[u8]) -> u32 {
    hamming_words(a, b)
}

/// The portable kernels.
/// The sums, for each of the 32 codes of a block, of `tables`' values at
/// the 4-bit pieces of its code: `Σ_g tables[16 g + piece_g(code)]`. A
/// block has 16 bytes per group, byte `t` holding the piece of code `t` in
/// its low half and that of code `t + 16` in its high half (see `codes`).
fn fastscan(block: &[u8], tables: &[u8]) -> [u32; 32] {
    let mut sums = [0u32; 32];
    for (row, table) in block.chunks_exact(16).zip(tables.chunks_exact(16)) {
        for (t, &pieces) in row.iter().enumerate() {
            sums[t] += u32::from(table[usize::from(pieces & 15)]);
            sums[t + 16] += u32::from(table[usize::from(pieces >> 4)]);
        }
    }
    sums
}

pub(crate) const KERNELS: Kernels = Kernels { name: "scalar", dot, dot_f16, l2_squared, l1, hamming, fastscan };
