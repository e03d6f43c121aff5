//! The write layer's values: items and change marks, and their codecs.
//!
//! An item's entry, under `(index, Item, id)`, starts with a tag byte:
//!
//! | tag | entry | payload |
//! | --- | --- | --- |
//! | 0 | staged (formats 1 to 4 only) | the distance's header (plain old data), then the vector in the distance's codec |
//! | 1 | in a slot | the item's slot, `u32` little-endian |
//!
//! Format 5 writes every vector in a slot when it is added, and the entry
//! names the slot; up to format 4, a vector waited for the next build in a
//! staged entry, which [`Writer::upgrade`](crate::Writer::upgrade) reads.
//! A change mark, under
//! `(index, Updated, id)`, is empty for an item the last build did not
//! hold, and otherwise holds the slot it held it in (`u32` little-endian),
//! so that the next build takes that slot out of the trees.
//!
//! Decoding checks the tag and every length; it never panics.

use std::fmt;

use crate::Distance;
use crate::distance::Machinery;
use crate::distance::Vector;
use crate::vector::{VectorCodec, VectorSizeError};

const STAGED_TAG: u8 = 0;
const BUILT_TAG: u8 = 1;

/// A stored vector with the distance's per-vector header, borrowed.
pub struct Leaf<'a, D: Machinery> {
    /// Precomputed per-vector data (the norm for cosine, nothing for Euclidean).
    pub header: D::Header,
    /// The vector, in the distance's codec (floats or packed bits).
    pub vector: Vector<'a, D>,
}

impl<D: Machinery> Clone for Leaf<'_, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<D: Machinery> Copy for Leaf<'_, D> {}

impl<D: Machinery> fmt::Debug for Leaf<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leaf").field("header", &self.header).field("vector", &self.vector).finish()
    }
}

impl<D: Machinery> Leaf<'_, D> {
    /// Whether the vector has `dimensions` values.
    pub fn has_dimensions(&self, dimensions: usize) -> bool {
        D::Codec::as_bytes(self.vector).len() == D::Codec::size(dimensions)
    }

    /// Appends the header, then the vector, to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(bytemuck::bytes_of(&self.header));
        out.extend_from_slice(D::Codec::as_bytes(self.vector));
    }
}

/// What an item's entry says.
#[derive(Debug)]
pub enum ItemEntry<'a, D: Distance> {
    /// A vector waiting for the next build, in formats 1 to 4.
    Staged(Leaf<'a, D>),
    /// The slot that holds the item's vector.
    Built(u32),
}

/// Why bytes do not decode as an item entry or a mark.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    /// There is not even a tag byte.
    #[error("the item entry is empty")]
    Empty,
    /// The tag byte is unknown.
    #[error("unknown item tag {0}")]
    UnknownTag(u8),
    /// A slot is four bytes.
    #[error("a slot is 4 bytes, found {0}")]
    Slot(usize),
    /// The payload is shorter than the header.
    #[error("a staged item needs at least {needed} bytes, found {found}")]
    TooShort {
        /// The header's size.
        needed: usize,
        /// The payload's size.
        found: usize,
    },
    /// The vector is not whole values.
    #[error(transparent)]
    Vector(#[from] VectorSizeError),
}

/// Appends the leaf of `values` (its header, then its vector) to `out`.
pub fn encode_leaf<D: Distance>(values: &[f32], out: &mut Vec<u8>) {
    let vector = D::Codec::encode(values);
    Leaf::<D> { header: D::new_header(values), vector: D::Codec::borrow(&vector) }.encode_into(out);
}

/// The entry of an item whose vector is in `slot`.
pub fn encode_built(slot: u32) -> [u8; 5] {
    let [a, b, c, d] = slot.to_le_bytes();
    [BUILT_TAG, a, b, c, d]
}

impl<'a, D: Distance> ItemEntry<'a, D> {
    /// Decodes an entry, checking its tag and every length.
    pub fn decode(bytes: &'a [u8]) -> Result<ItemEntry<'a, D>, ItemError> {
        let (&tag, payload) = bytes.split_first().ok_or(ItemError::Empty)?;
        match tag {
            STAGED_TAG => decode_leaf(payload).map(ItemEntry::Staged),
            BUILT_TAG => decode_slot(payload).map(ItemEntry::Built),
            other => Err(ItemError::UnknownTag(other)),
        }
    }
}

/// Decodes a header followed by a vector.
pub fn decode_leaf<D: Distance>(bytes: &[u8]) -> Result<Leaf<'_, D>, ItemError> {
    let needed = size_of::<D::Header>();
    if bytes.len() < needed {
        return Err(ItemError::TooShort { needed, found: bytes.len() });
    }
    let (header, vector) = bytes.split_at(needed);
    Ok(Leaf { header: bytemuck::pod_read_unaligned(header), vector: D::Codec::view(vector)? })
}

fn decode_slot(bytes: &[u8]) -> Result<u32, ItemError> {
    let bytes: [u8; 4] = bytes.try_into().map_err(|_| ItemError::Slot(bytes.len()))?;
    Ok(u32::from_le_bytes(bytes))
}

/// The change mark of an item the last build held in `slot`, if any.
pub fn encode_mark(slot: Option<u32>) -> Vec<u8> {
    slot.map_or_else(Vec::new, |slot| slot.to_le_bytes().to_vec())
}

/// Decodes a change mark: the slot the last build held the item in, if any.
pub fn decode_mark(bytes: &[u8]) -> Result<Option<u32>, ItemError> {
    match bytes {
        [] => Ok(None),
        bytes => decode_slot(bytes).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::distances::{Cosine, Hamming};

    proptest! {
        #[test]
        fn staged_round_trip(values in proptest::collection::vec(-1e6f32..1e6, 0..70)) {
            let mut bytes = vec![STAGED_TAG];
            encode_leaf::<Cosine>(&values, &mut bytes);
            let ItemEntry::Staged(leaf) = ItemEntry::<Cosine>::decode(&bytes).unwrap() else {
                panic!("a staged entry decodes as staged");
            };
            prop_assert_eq!(leaf.header, Cosine::new_header(&values));
            prop_assert_eq!(leaf.vector.to_vec(), values);
            let mut again = vec![STAGED_TAG];
            leaf.encode_into(&mut again);
            prop_assert_eq!(again, bytes);
        }

        #[test]
        fn built_round_trip(slot in any::<u32>()) {
            let bytes = encode_built(slot);
            prop_assert!(matches!(ItemEntry::<Hamming>::decode(&bytes), Ok(ItemEntry::Built(s)) if s == slot));
            prop_assert_eq!(decode_mark(&bytes[1..]), Ok(Some(slot)));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = ItemEntry::<Cosine>::decode(&bytes);
            let _ = ItemEntry::<Hamming>::decode(&bytes);
            let _ = decode_mark(&bytes);
        }
    }

    #[test]
    fn malformed_entries_are_errors() {
        assert_eq!(ItemEntry::<Cosine>::decode(&[]).unwrap_err(), ItemError::Empty);
        assert_eq!(ItemEntry::<Cosine>::decode(&[7]).unwrap_err(), ItemError::UnknownTag(7));
        assert_eq!(ItemEntry::<Cosine>::decode(&[1, 0, 0]).unwrap_err(), ItemError::Slot(2));
        assert_eq!(ItemEntry::<Cosine>::decode(&[0, 0]).unwrap_err(), ItemError::TooShort { needed: 4, found: 1 });
        assert!(matches!(ItemEntry::<Cosine>::decode(&[0, 0, 0, 0, 0, 1]), Err(ItemError::Vector(_))));
        assert_eq!(decode_mark(&[1, 2]), Err(ItemError::Slot(2)));
        assert_eq!(decode_mark(&[]), Ok(None));
    }
}
