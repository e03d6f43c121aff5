//! Vectors as they are stored, and the [`VectorCodec`] trait that lets a
//! distance choose how: little-endian `f32`s ([`F32`]) or packed bits
//! ([`crate::bits::PackedBits`]).
//!
//! LMDB values have no alignment, so a stored vector is never cast to
//! `&[f32]`; [`UnalignedF32`] reads each value from its four bytes instead.
//! An owned `&[f32]` becomes an `UnalignedF32` for free (the crate only builds
//! on little-endian targets, see `lib.rs`), so one set of kernels serves
//! stored vectors, queries and centroids alike.

use std::fmt;

/// How a distance stores vectors: leaves and split normals alike.
#[doc(hidden)]
pub trait VectorCodec: Send + Sync + 'static {
    /// A stored vector, borrowed from LMDB's bytes.
    type View<'a>: Copy + fmt::Debug + PartialEq + Send + Sync;
    /// A vector computed in memory (a split normal while the trees grow).
    type Owned: Clone + fmt::Debug + Send + Sync;

    /// The encoded size of a vector of `dimensions` values.
    fn size(dimensions: usize) -> usize;

    /// Views stored bytes, checking only that their length can be a vector.
    fn view(bytes: &[u8]) -> Result<Self::View<'_>, VectorSizeError>;

    /// The encoded bytes of a view.
    fn as_bytes<'a>(view: Self::View<'a>) -> &'a [u8];

    /// Encodes `values`.
    fn encode(values: &[f32]) -> Self::Owned;

    /// Whether a stored vector of `dimensions` values is as `encode` writes
    /// it (for bits: no padding bit set).
    fn is_canonical(view: Self::View<'_>, dimensions: usize) -> bool;

    /// Views an encoded vector.
    fn borrow(owned: &Self::Owned) -> Self::View<'_>;
}

/// The codec of vectors stored as they are: little-endian `f32`s.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum F32 {}

impl VectorCodec for F32 {
    type View<'a> = UnalignedF32<'a>;
    type Owned = Vec<f32>;

    fn size(dimensions: usize) -> usize {
        dimensions * 4
    }

    fn view(bytes: &[u8]) -> Result<UnalignedF32<'_>, VectorSizeError> {
        UnalignedF32::from_bytes(bytes)
    }

    fn as_bytes<'a>(view: Self::View<'a>) -> &'a [u8] {
        view.as_bytes()
    }

    fn encode(values: &[f32]) -> Vec<f32> {
        values.to_vec()
    }

    fn is_canonical(_view: UnalignedF32<'_>, _dimensions: usize) -> bool {
        true
    }

    fn borrow(owned: &Vec<f32>) -> UnalignedF32<'_> {
        UnalignedF32::from_slice(owned)
    }
}

/// A borrowed vector of little-endian `f32`s with no alignment requirement.
#[derive(Clone, Copy, PartialEq)]
pub struct UnalignedF32<'a> {
    bytes: &'a [u8],
}

/// The bytes of a vector are not a whole number of its units (4-byte floats,
/// or 8-byte words of bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a stored vector needs a multiple of {unit} bytes, found {len}")]
pub struct VectorSizeError {
    /// The byte length found.
    pub len: usize,
    /// The size of one unit.
    pub unit: usize,
}

impl<'a> UnalignedF32<'a> {
    /// Views stored bytes as a vector.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<UnalignedF32<'a>, VectorSizeError> {
        if bytes.len().is_multiple_of(4) {
            Ok(UnalignedF32 { bytes })
        } else {
            Err(VectorSizeError { len: bytes.len(), unit: 4 })
        }
    }

    /// Views a slice of floats as a vector (no copy).
    pub fn from_slice(values: &'a [f32]) -> UnalignedF32<'a> {
        UnalignedF32 { bytes: bytemuck::cast_slice(values) }
    }

    /// The encoded bytes.
    pub fn as_bytes(self) -> &'a [u8] {
        self.bytes
    }

    /// The number of dimensions.
    pub fn len(self) -> usize {
        self.bytes.len() / 4
    }

    /// Whether the vector has no dimension (a random split's normal).
    pub fn is_empty(self) -> bool {
        self.bytes.is_empty()
    }

    /// The values, in order.
    pub fn iter(self) -> impl ExactSizeIterator<Item = f32> + 'a {
        self.bytes.chunks_exact(4).map(read_f32)
    }

    /// A copy of the values.
    pub fn to_vec(self) -> Vec<f32> {
        self.iter().collect()
    }
}

impl fmt::Debug for UnalignedF32<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Reads one little-endian `f32` from the first four bytes of `chunk`.
#[inline(always)]
pub(crate) fn read_f32(chunk: &[u8]) -> f32 {
    f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn encode_f32s(values: impl IntoIterator<Item = f32>, out: &mut Vec<u8>) {
        for value in values {
            out.extend_from_slice(&value.to_le_bytes());
        }
    }

    proptest! {
        #[test]
        fn round_trip(values in proptest::collection::vec(any::<f32>(), 0..70), shift in 0usize..4) {
            // Misalign the encoded bytes on purpose.
            let mut bytes = vec![0u8; shift];
            encode_f32s(values.iter().copied(), &mut bytes);
            let vector = UnalignedF32::from_bytes(&bytes[shift..]).unwrap();
            prop_assert_eq!(vector.len(), values.len());
            let decoded: Vec<u32> = vector.iter().map(f32::to_bits).collect();
            let expected: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
            prop_assert_eq!(decoded, expected);
        }

        #[test]
        fn slices_encode_as_little_endian(values in proptest::collection::vec(any::<f32>(), 0..70)) {
            let mut bytes = Vec::new();
            encode_f32s(values.iter().copied(), &mut bytes);
            prop_assert_eq!(UnalignedF32::from_slice(&values).as_bytes(), &bytes[..]);
        }
    }

    #[test]
    fn partial_floats_are_refused() {
        assert_eq!(UnalignedF32::from_bytes(&[0; 7]), Err(VectorSizeError { len: 7, unit: 4 }));
    }
}
