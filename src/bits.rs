//! Packed bits: how the binary-quantized distances store vectors.
//!
//! A vector of `d` values becomes `ceil(d / 64)` little-endian `u64` words;
//! value `i` is bit `i % 64` of word `i / 64`, set when the value is greater
//! than zero. The bits after `d` in the last word are zero, so that kernels
//! work on whole words. One bit per dimension: 32 times smaller than `f32`s.
//!
//! Queries may stay `f32` (asymmetric distances): [`SignedDot`] prepares a
//! query once so that its dot product with any ±1 vector costs one table
//! look-up per byte of bits.

use std::fmt;

use crate::vector::{VectorCodec, VectorSizeError};

/// Bits per stored word.
const WORD_BITS: usize = 64;

/// A borrowed vector of packed bits, read in place (no alignment needed).
#[derive(Clone, Copy, PartialEq)]
pub struct Bits<'a> {
    bytes: &'a [u8],
}

impl<'a> Bits<'a> {
    /// Views words as bits (no copy).
    pub fn from_words(words: &'a [u64]) -> Bits<'a> {
        Bits { bytes: bytemuck::cast_slice(words) }
    }

    /// The encoded bytes.
    pub fn as_bytes(self) -> &'a [u8] {
        self.bytes
    }

    /// The number of bits stored, padding included.
    pub fn capacity(self) -> usize {
        self.bytes.len() * 8
    }

    /// The first `dimensions` bits, in order.
    pub fn iter(self, dimensions: usize) -> impl Iterator<Item = bool> + 'a {
        self.bytes.iter().flat_map(|byte| (0..8).map(move |bit| byte >> bit & 1 == 1)).take(dimensions)
    }

    /// Whether any bit at or after `dimensions` is set (padding must be zero).
    pub fn has_padding_set(self, dimensions: usize) -> bool {
        self.bytes.iter().enumerate().any(|(at, &byte)| {
            let first = at * 8;
            let kept = dimensions.saturating_sub(first).min(8);
            kept < 8 && byte >> kept != 0
        })
    }
}

impl fmt::Debug for Bits<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits: String = self.iter(self.capacity()).map(|bit| if bit { '1' } else { '0' }).collect();
        f.debug_tuple("Bits").field(&bits).finish()
    }
}

/// The codec of packed bits.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum PackedBits {}

impl VectorCodec for PackedBits {
    type View<'a> = Bits<'a>;
    type Owned = Vec<u64>;

    fn size(dimensions: usize) -> usize {
        dimensions.div_ceil(WORD_BITS) * 8
    }

    fn view(bytes: &[u8]) -> Result<Bits<'_>, VectorSizeError> {
        if bytes.len().is_multiple_of(8) {
            Ok(Bits { bytes })
        } else {
            Err(VectorSizeError { len: bytes.len(), unit: 8 })
        }
    }

    fn as_bytes<'a>(view: Self::View<'a>) -> &'a [u8] {
        view.as_bytes()
    }

    fn encode(values: &[f32]) -> Vec<u64> {
        values
            .chunks(WORD_BITS)
            .map(|chunk| chunk.iter().enumerate().fold(0u64, |word, (bit, &v)| word | (u64::from(v > 0.0) << bit)))
            .collect()
    }

    fn is_canonical(view: Bits<'_>, dimensions: usize) -> bool {
        !view.has_padding_set(dimensions)
    }

    fn borrow(owned: &Vec<u64>) -> Bits<'_> {
        Bits::from_words(owned)
    }
}

/// A query prepared for dot products with ±1 vectors (bit set: +1, clear:
/// −1): for each byte of the bits, the query's signed sums for all 256
/// values of that byte.
pub struct SignedDot {
    sums: Vec<[f32; 256]>,
}

impl SignedDot {
    /// Prepares `query`: 256 additions per eight dimensions.
    pub fn new(query: &[f32]) -> SignedDot {
        let sums = query
            .chunks(8)
            .map(|values| {
                let mut table = [0.0f32; 256];
                table[0] = -values.iter().sum::<f32>();
                for byte in 1..256usize {
                    let lowest = byte.trailing_zeros() as usize;
                    let gain = values.get(lowest).map_or(0.0, |v| 2.0 * v);
                    table[byte] = table[byte & (byte - 1)] + gain;
                }
                table
            })
            .collect();
        SignedDot { sums }
    }

    /// `Σ query[i] × (±1)[i]` over the query's dimensions.
    pub fn dot(&self, bits: Bits<'_>) -> f32 {
        self.sums.iter().zip(bits.as_bytes()).map(|(table, &byte)| table[usize::from(byte)]).sum()
    }
}

impl fmt::Debug for SignedDot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedDot").field("bytes", &self.sums.len()).finish()
    }
}

/// `Σ |query[i] − scale × (±1)[i]|` over the query's dimensions.
pub fn signed_l1(query: &[f32], scale: f32, bits: Bits<'_>) -> f32 {
    let mut sums = [0.0f32; 8];
    for (values, &byte) in query.chunks(8).zip(bits.as_bytes()) {
        for (bit, (sum, &v)) in sums.iter_mut().zip(values).enumerate() {
            let sign = if byte >> bit & 1 == 1 { scale } else { -scale };
            *sum += (v - sign).abs();
        }
    }
    sums.iter().sum()
}

/// The vector as ±1 values, padding left out.
pub fn signs(bits: Bits<'_>, dimensions: usize, out: &mut Vec<f32>) {
    out.clear();
    out.extend(bits.iter(dimensions).map(|bit| if bit { 1.0 } else { -1.0 }));
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn reference_signs(values: &[f32]) -> Vec<f64> {
        values.iter().map(|&v| if v > 0.0 { 1.0 } else { -1.0 }).collect()
    }

    fn vectors() -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
        (1usize..200).prop_flat_map(|len| {
            let v = proptest::collection::vec(-100.0f32..100.0, len);
            (v.clone(), v)
        })
    }

    proptest! {
        #[test]
        fn packing_round_trips_and_pads_with_zeros(values in proptest::collection::vec(-1.0f32..1.0, 0..200)) {
            let words = PackedBits::encode(&values);
            let bits = PackedBits::borrow(&words);
            prop_assert_eq!(bits.as_bytes().len(), PackedBits::size(values.len()));
            prop_assert!(!bits.has_padding_set(values.len()));
            let decoded: Vec<bool> = bits.iter(values.len()).collect();
            let expected: Vec<bool> = values.iter().map(|&v| v > 0.0).collect();
            prop_assert_eq!(decoded, expected);
            let view = PackedBits::view(bits.as_bytes()).unwrap();
            prop_assert_eq!(view.as_bytes(), bytemuck::cast_slice::<u64, u8>(&words));
        }

        #[test]
        fn signed_dot_matches_the_plain_sum((query, item) in vectors()) {
            let words = PackedBits::encode(&item);
            let expected: f64 = query.iter().zip(reference_signs(&item)).map(|(&q, s)| f64::from(q) * s).sum();
            let scale: f64 = query.iter().map(|&q| f64::from(q).abs()).sum();
            let found = SignedDot::new(&query).dot(Bits::from_words(&words));
            prop_assert!((f64::from(found) - expected).abs() <= 1e-4 * scale.max(1.0), "{found} vs {expected}");
        }

        #[test]
        fn signed_l1_matches_the_plain_sum((query, item) in vectors(), scale in 0.0f32..10.0) {
            let words = PackedBits::encode(&item);
            let expected: f64 = query
                .iter()
                .zip(reference_signs(&item))
                .map(|(&q, s)| (f64::from(q) - f64::from(scale) * s).abs())
                .sum();
            let found = signed_l1(&query, scale, Bits::from_words(&words));
            prop_assert!((f64::from(found) - expected).abs() <= 1e-4 * expected.max(1.0), "{found} vs {expected}");
        }
    }

    #[test]
    fn one_and_sixty_five_dimensions() {
        let words = PackedBits::encode(&[0.5]);
        assert_eq!(words, [1]);
        assert_eq!(PackedBits::size(1), 8);
        let mut values = vec![-1.0f32; 65];
        values[0] = 1.0;
        values[64] = 2.0;
        let words = PackedBits::encode(&values);
        assert_eq!(words, [1, 1]);
        assert_eq!(PackedBits::size(65), 16);
        let mut out = Vec::new();
        signs(Bits::from_words(&words), 65, &mut out);
        assert_eq!(out.len(), 65);
        assert_eq!((out[0], out[1], out[63], out[64]), (1.0, -1.0, -1.0, 1.0));
        // Zero is not greater than zero.
        assert_eq!(PackedBits::encode(&[0.0, -0.0]), [0]);
    }

    #[test]
    fn set_padding_is_detected() {
        let words = [1u64 << 5];
        assert!(Bits::from_words(&words).has_padding_set(5));
        assert!(!Bits::from_words(&words).has_padding_set(6));
        assert!(PackedBits::view(&[0; 7]).is_err());
    }
}
