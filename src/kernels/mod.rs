//! The hot loops: dot product, squared L2 and L1 over unaligned vectors,
//! the dot product of a half-precision split normal with a vector, and the
//! Hamming distance over packed bits, with the implementation
//! picked once per process from the CPU's features.
//!
//! `scalar.rs` is the portable reference: sixteen independent sums over
//! chunks of sixteen floats, reduced pairwise in a fixed order, plus a plain
//! sum over the tail. On x86-64 with AVX2 and FMA, `x86_64.rs` does the same
//! with two 256-bit registers and fused multiply-adds. Results differ only
//! by the rounding of the fused steps (the proptests below bound it); the
//! tail is never fused, so vectors shorter than a chunk give the same bits
//! on every CPU.

pub(crate) mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86_64;

use std::sync::LazyLock;

use crate::bits::Bits;
use crate::half::UnalignedF16;
use crate::vector::UnalignedF32;

/// One implementation of every kernel, over little-endian `f32` bytes.
/// (Exposed, hidden, for `benches/kernels.rs`.)
#[derive(Clone, Copy)]
pub struct Kernels {
    /// `"scalar"` or `"avx2+fma"`.
    pub name: &'static str,
    /// The dot product.
    pub dot: fn(&[u8], &[u8]) -> f32,
    /// The dot product of little-endian binary16 values with `f32`s.
    pub dot_f16: fn(&[u8], &[u8]) -> f32,
    /// The squared Euclidean distance.
    pub l2_squared: fn(&[u8], &[u8]) -> f32,
    /// The Manhattan distance.
    pub l1: fn(&[u8], &[u8]) -> f32,
    /// The number of differing bits over whole little-endian `u64` words.
    pub hamming: fn(&[u8], &[u8]) -> u32,
    /// The sums of a query's byte tables over the 4-bit pieces of a block
    /// of 32 codes (see `codes`).
    pub fastscan: fn(&[u8], &[u8]) -> [u32; 32],
}

/// Every implementation this CPU can run, the portable one first.
pub fn available() -> Vec<Kernels> {
    let mut all = vec![scalar::KERNELS];
    #[cfg(target_arch = "x86_64")]
    all.extend(x86_64::kernels());
    all
}

/// Asks the CPU to bring the first `lines` cache lines of `bytes` into its
/// caches ahead of their use: a hint, which changes no result (a no-op
/// where there is no such instruction).
#[inline]
pub(crate) fn prefetch(bytes: &[u8], lines: usize) {
    #[cfg(target_arch = "x86_64")]
    x86_64::prefetch(bytes, lines);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (bytes, lines);
}

static KERNELS: LazyLock<Kernels> = LazyLock::new(|| {
    #[cfg(target_arch = "x86_64")]
    if let Some(kernels) = x86_64::kernels() {
        return kernels;
    }
    scalar::KERNELS
});

/// The name of the distance kernels this process uses, picked from the
/// CPU's features: `"avx2+fma"` or `"scalar"`.
pub fn implementation() -> &'static str {
    KERNELS.name
}

/// The dot product of the common prefix of `a` and `b`.
pub fn dot(a: UnalignedF32<'_>, b: UnalignedF32<'_>) -> f32 {
    (KERNELS.dot)(a.as_bytes(), b.as_bytes())
}

/// The dot product of a half-precision vector (a split normal) with the
/// common prefix of `b`.
pub fn dot_f16(a: UnalignedF16<'_>, b: UnalignedF32<'_>) -> f32 {
    (KERNELS.dot_f16)(a.as_bytes(), b.as_bytes())
}

/// The squared Euclidean distance between `a` and `b`.
pub fn l2_squared(a: UnalignedF32<'_>, b: UnalignedF32<'_>) -> f32 {
    (KERNELS.l2_squared)(a.as_bytes(), b.as_bytes())
}

/// The Manhattan distance between `a` and `b`.
pub fn l1(a: UnalignedF32<'_>, b: UnalignedF32<'_>) -> f32 {
    (KERNELS.l1)(a.as_bytes(), b.as_bytes())
}

/// The number of bits that differ between `a` and `b`.
pub fn hamming(a: Bits<'_>, b: Bits<'_>) -> u32 {
    (KERNELS.hamming)(a.as_bytes(), b.as_bytes())
}

/// For each of the 32 codes of `block`, the sum of `tables`' values at its
/// 4-bit pieces, a table of 16 bytes per group of 4 dimensions (see
/// `codes`); groups past the end of the shorter argument, or an odd last
/// one, count for nothing in the vector kernels: callers pass whole pairs.
#[inline]
pub fn fastscan(block: &[u8], tables: &[u8]) -> [u32; 32] {
    (KERNELS.fastscan)(block, tables)
}

/// The Euclidean norm of `a`.
pub fn norm(a: UnalignedF32<'_>) -> f32 {
    dot(a, a).sqrt()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn pair() -> impl Strategy<Value = (Vec<f32>, Vec<f32>, usize)> {
        (0usize..200).prop_flat_map(|len| {
            let v = proptest::collection::vec(-1000.0f32..1000.0, len);
            // A shift misaligns the bytes the kernels read.
            (v.clone(), v, 0usize..4)
        })
    }

    fn misaligned(values: &[f32], shift: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; shift];
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        bytes
    }

    fn close(found: f32, expected: f64, scale: f64) -> bool {
        (f64::from(found) - expected).abs() <= 1e-4 * scale.max(1.0)
    }

    proptest! {
        #[test]
        fn every_kernel_matches_the_plain_sums((a, b, shift) in pair()) {
            let (ab, bb) = (misaligned(&a, shift), misaligned(&b, 3 - shift));
            let (ab, bb) = (&ab[shift..], &bb[3 - shift..]);
            let pairs = || a.iter().zip(&b).map(|(x, y)| (f64::from(*x), f64::from(*y)));
            let dot: f64 = pairs().map(|(x, y)| x * y).sum();
            let dot_scale: f64 = pairs().map(|(x, y)| (x * y).abs()).sum();
            let l2: f64 = pairs().map(|(x, y)| (x - y).powi(2)).sum();
            let l1: f64 = pairs().map(|(x, y)| (x - y).abs()).sum();
            // The normal's side in binary16: the reference widens what is stored.
            let halves: Vec<u16> = a.iter().map(|&x| crate::half::f32_to_f16(x / 1000.0)).collect();
            let half_bytes: Vec<u8> = halves.iter().flat_map(|h| h.to_le_bytes()).collect();
            let half_pairs = || halves.iter().zip(&b).map(|(h, y)| (f64::from(crate::half::f16_to_f32(*h)), f64::from(*y)));
            let dot_f16: f64 = half_pairs().map(|(x, y)| x * y).sum();
            let dot_f16_scale: f64 = half_pairs().map(|(x, y)| (x * y).abs()).sum();
            for kernels in available() {
                let found = (kernels.dot_f16)(&half_bytes, bb);
                prop_assert!(close(found, dot_f16, dot_f16_scale), "{}: dot_f16 {found} vs {dot_f16}", kernels.name);
                let found = (kernels.dot)(ab, bb);
                prop_assert!(close(found, dot, dot_scale), "{}: dot {found} vs {dot}", kernels.name);
                let found = (kernels.l2_squared)(ab, bb);
                prop_assert!(close(found, l2, l2), "{}: l2 {found} vs {l2}", kernels.name);
                let found = (kernels.l1)(ab, bb);
                prop_assert!(close(found, l1, l1), "{}: l1 {found} vs {l1}", kernels.name);
            }
        }
    }

    proptest! {
        #[test]
        fn every_hamming_kernel_counts_the_differing_bits(
            (a, b) in (0usize..40).prop_flat_map(|len| {
                (proptest::collection::vec(any::<u64>(), len), proptest::collection::vec(any::<u64>(), len))
            }),
            shift in 0usize..8,
        ) {
            let mut ab = vec![0u8; shift];
            ab.extend(a.iter().flat_map(|w| w.to_le_bytes()));
            let bb: Vec<u8> = b.iter().flat_map(|w| w.to_le_bytes()).collect();
            let expected: u32 = a.iter().zip(&b).map(|(x, y)| {
                (0..64).filter(|bit| (x >> bit & 1) != (y >> bit & 1)).count() as u32
            }).sum();
            for kernels in available() {
                prop_assert_eq!((kernels.hamming)(&ab[shift..], &bb), expected, "{}", kernels.name);
            }
        }
    }

    proptest! {
        #[test]
        fn every_fastscan_kernel_sums_the_table_entries(
            (block, tables) in (0usize..300).prop_flat_map(|pairs| {
                let bytes = 32 * pairs;
                (proptest::collection::vec(any::<u8>(), bytes), proptest::collection::vec(any::<u8>(), bytes))
            }),
            shift in 0usize..16,
        ) {
            let mut shifted = vec![0u8; shift];
            shifted.extend_from_slice(&block);
            let mut expected = [0u32; 32];
            for (row, table) in block.chunks_exact(16).zip(tables.chunks_exact(16)) {
                for t in 0..16 {
                    expected[t] += u32::from(table[usize::from(row[t] % 16)]);
                    expected[t + 16] += u32::from(table[usize::from(row[t] / 16)]);
                }
            }
            for kernels in available() {
                prop_assert_eq!((kernels.fastscan)(&shifted[shift..], &tables), expected, "{}", kernels.name);
            }
        }
    }

    #[test]
    fn short_vectors_give_the_same_bits_everywhere() {
        // Vectors shorter than one chunk only take the tail loop, which never
        // fuses: builds of small vectors give the same bytes on every CPU.
        let a = [1.5f32, -2.25, 3.0e-3];
        let b = [0.1f32, 7.0, -1.0];
        let (a, b) = (misaligned(&a, 0), misaligned(&b, 0));
        for kernels in available() {
            assert_eq!((kernels.dot)(&a, &b).to_bits(), (scalar::KERNELS.dot)(&a, &b).to_bits());
            assert_eq!((kernels.l2_squared)(&a, &b).to_bits(), (scalar::KERNELS.l2_squared)(&a, &b).to_bits());
        }
    }
}
