//! Half-precision floats: how the `f32` distances store split normals.
//!
//! A split normal only decides on which side of a plane a vector falls, so
//! the eleven significant bits of an IEEE 754 binary16 value are plenty, and
//! halving the normal halves what splits cost on disk: at 768 dimensions a
//! normal of `f32`s needs an LMDB overflow page of its own (4 KiB), one of
//! `f16`s fits inside a shared page. The build computes every side with the
//! stored (rounded) normal, so queries and incremental builds descend exactly
//! as the items were placed.
//!
//! Values are little-endian `u16`s, read in place like [`UnalignedF32`].
//!
//! [`UnalignedF32`]: crate::vector::UnalignedF32

use std::fmt;

use crate::vector::{VectorCodec, VectorSizeError};

/// A borrowed vector of little-endian binary16 values, no alignment needed.
#[derive(Clone, Copy, PartialEq)]
pub struct UnalignedF16<'a> {
    bytes: &'a [u8],
}

impl<'a> UnalignedF16<'a> {
    /// The encoded bytes.
    pub fn as_bytes(self) -> &'a [u8] {
        self.bytes
    }

    /// The values, widened to `f32`, in order.
    pub fn iter(self) -> impl ExactSizeIterator<Item = f32> + 'a {
        self.bytes.chunks_exact(2).map(|h| f16_to_f32(u16::from_le_bytes([h[0], h[1]])))
    }
}

impl fmt::Debug for UnalignedF16<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The codec of half-precision vectors.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum F16 {}

impl VectorCodec for F16 {
    type View<'a> = UnalignedF16<'a>;
    type Owned = Vec<u16>;

    fn size(dimensions: usize) -> usize {
        dimensions * 2
    }

    fn view(bytes: &[u8]) -> Result<UnalignedF16<'_>, VectorSizeError> {
        if bytes.len().is_multiple_of(2) {
            Ok(UnalignedF16 { bytes })
        } else {
            Err(VectorSizeError { len: bytes.len(), unit: 2 })
        }
    }

    fn as_bytes<'a>(view: Self::View<'a>) -> &'a [u8] {
        view.as_bytes()
    }

    fn encode(values: &[f32]) -> Vec<u16> {
        values.iter().map(|&v| f32_to_f16(v)).collect()
    }

    fn is_canonical(_view: UnalignedF16<'_>, _dimensions: usize) -> bool {
        true
    }

    fn borrow(owned: &Vec<u16>) -> UnalignedF16<'_> {
        UnalignedF16 { bytes: bytemuck::cast_slice(owned) }
    }
}

/// Rounds an `f32` to the nearest binary16, ties to even; out of range
/// gives an infinity, NaN stays NaN.
pub fn f32_to_f16(value: f32) -> u16 {
    let bits = value.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exponent = ((bits >> 23) & 0xff) as i32;
    let mantissa = bits & 0x7f_ffff;
    if exponent == 0xff {
        return sign | 0x7c00 | if mantissa != 0 { 0x200 } else { 0 };
    }
    // The exponent rebased for binary16.
    let half_exponent = exponent - 127 + 15;
    if half_exponent >= 0x1f {
        return sign | 0x7c00;
    }
    if half_exponent <= 0 {
        // A subnormal binary16 (or zero): units of 2^-24.
        if half_exponent < -10 {
            return sign;
        }
        let significand = mantissa | 0x80_0000;
        let shift = (14 - half_exponent) as u32;
        let halfway = 1u32 << (shift - 1);
        let odd = (significand >> shift) & 1;
        return sign | ((significand + halfway - 1 + odd) >> shift) as u16;
    }
    let kept = mantissa >> 13;
    let dropped = mantissa & 0x1fff;
    let mut half = u32::from(sign) | ((half_exponent as u32) << 10) | kept;
    // A carry out of the mantissa correctly bumps the exponent.
    if dropped > 0x1000 || (dropped == 0x1000 && kept & 1 == 1) {
        half += 1;
    }
    half as u16
}

/// The `f32` nearest to `value` that a binary16 holds exactly.
pub fn round_to_f16(value: f32) -> f32 {
    f16_to_f32(f32_to_f16(value))
}

/// Widens a finite binary16 to the `f32` of the same value, without a
/// branch, so that the portable kernel vectorises: the half's bits moved
/// into an `f32`'s place, scaled by 2^112 to rebias the exponent (this also
/// normalises subnormals exactly). Infinities and NaNs come out as large
/// finite values; split normals never hold them.
#[inline(always)]
pub fn widen_finite(half: u16) -> f32 {
    const REBIAS: f32 = f32::from_bits(0x7780_0000); // 2^112
    let magnitude = f32::from_bits(u32::from(half & 0x7fff) << 13) * REBIAS;
    f32::from_bits(magnitude.to_bits() | (u32::from(half & 0x8000) << 16))
}

/// Widens a binary16 to the `f32` of the same value (exact).
pub fn f16_to_f32(half: u16) -> f32 {
    let sign = u32::from(half & 0x8000) << 16;
    let exponent = u32::from((half >> 10) & 0x1f);
    let mantissa = u32::from(half & 0x3ff);
    match exponent {
        0 => {
            let magnitude = mantissa as f32 / 16_777_216.0;
            if sign != 0 { -magnitude } else { magnitude }
        }
        0x1f => f32::from_bits(sign | 0x7f80_0000 | (mantissa << 13)),
        _ => f32::from_bits(sign | ((exponent + 112) << 23) | (mantissa << 13)),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn every_half_widens_and_narrows_back() {
        for half in 0..=u16::MAX {
            let wide = f16_to_f32(half);
            if wide.is_nan() {
                assert!(f16_to_f32(f32_to_f16(wide)).is_nan());
            } else {
                assert_eq!(f32_to_f16(wide), half, "{half:#06x} widened to {wide}");
            }
        }
    }

    #[test]
    fn every_finite_half_widens_the_same_without_branches() {
        for half in (0..=u16::MAX).filter(|h| h & 0x7c00 != 0x7c00) {
            assert_eq!(widen_finite(half).to_bits(), f16_to_f32(half).to_bits(), "{half:#06x}");
        }
    }

    #[test]
    fn rounding_ties_go_to_even_and_large_values_to_infinity() {
        // 1 + 2^-11 is halfway between 1 and the next half, 1 + 2^-10.
        assert_eq!(f32_to_f16(1.0 + 2f32.powi(-11)), 0x3c00);
        assert_eq!(f32_to_f16(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02);
        assert_eq!(f32_to_f16(65504.0), 0x7bff);
        assert_eq!(f32_to_f16(1e6), 0x7c00);
        assert_eq!(f32_to_f16(-1e-9), 0x8000);
        assert_eq!(f32_to_f16(2f32.powi(-24)), 0x0001);
        assert_eq!(f32_to_f16(2f32.powi(-25)), 0x0000);
    }

    proptest! {
        #[test]
        fn narrowing_keeps_eleven_significant_bits(value in -60000.0f32..60000.0) {
            let back = f16_to_f32(f32_to_f16(value));
            let tolerance = value.abs() * 2f32.powi(-11) + 2f32.powi(-25);
            prop_assert!((back - value).abs() <= tolerance, "{value} came back as {back}");
        }

        #[test]
        fn encoded_vectors_view_their_values(values in proptest::collection::vec(-2.0f32..2.0, 0..70)) {
            let owned = F16::encode(&values);
            let view = F16::borrow(&owned);
            prop_assert_eq!(view.as_bytes().len(), F16::size(values.len()));
            let again = F16::view(view.as_bytes()).unwrap();
            let widened: Vec<f32> = again.iter().collect();
            let expected: Vec<f32> = values.iter().map(|&v| f16_to_f32(f32_to_f16(v))).collect();
            prop_assert_eq!(widened, expected);
        }
    }
}
