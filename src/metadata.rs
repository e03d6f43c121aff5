//! The metadata record of a built index.
//!
//! Stored under `(index, Metadata, 0)`, little-endian:
//!
//! | bytes | field |
//! | --- | --- |
//! | 4 | dimensions (`u32`) |
//! | 4 | `split_after` used by the build (`u32`) |
//! | 4 | number of trees `n` (`u32`) |
//! | 4 × n | root node id of each tree (`u32`) |
//! | 1 | length `l` of the distance name |
//! | l | the distance name (UTF-8) |
//! | 1 | length `c` of the distance's build context |
//! | c | the build context (for the dot product, the largest norm as `f32`) |
//! | rest | roaring bitmap of the item ids the trees hold |

use std::borrow::Cow;

use roaring::RoaringBitmap;

/// What a build leaves behind for readers.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata<'a> {
    /// The number of dimensions.
    pub dimensions: u32,
    /// The bucket size the trees were grown with.
    pub split_after: u32,
    /// The root node of each tree, in tree order.
    pub roots: Vec<u32>,
    /// The name of the distance.
    pub distance: Cow<'a, str>,
    /// The distance's build context, as bytes.
    pub context: Cow<'a, [u8]>,
    /// The items the trees hold.
    pub items: RoaringBitmap,
}

/// Why bytes do not decode as [`Metadata`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The record ends before a field.
    #[error("metadata ends before its {0}")]
    Truncated(&'static str),
    /// The distance name is not UTF-8.
    #[error("the distance name is not UTF-8")]
    DistanceName,
    /// The bitmap does not decode.
    #[error("invalid item bitmap: {0}")]
    Bitmap(String),
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], MetadataError> {
        if self.0.len() < len {
            return Err(MetadataError::Truncated(field));
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, MetadataError> {
        let bytes = self.take(4, field)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }
}

impl<'a> Metadata<'a> {
    /// Appends the encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.dimensions.to_le_bytes());
        out.extend_from_slice(&self.split_after.to_le_bytes());
        let n_trees = u32::try_from(self.roots.len()).expect("fewer than 2^32 trees");
        out.extend_from_slice(&n_trees.to_le_bytes());
        for root in &self.roots {
            out.extend_from_slice(&root.to_le_bytes());
        }
        let name = self.distance.as_bytes();
        let len = u8::try_from(name.len()).expect("distance names are short");
        out.push(len);
        out.extend_from_slice(name);
        let len = u8::try_from(self.context.len()).expect("build contexts are short");
        out.push(len);
        out.extend_from_slice(&self.context);
        // Writing into a Vec cannot fail.
        let _ = self.items.serialize_into(&mut *out);
    }

    /// Decodes a record, checking every length.
    pub fn decode(bytes: &'a [u8]) -> Result<Metadata<'a>, MetadataError> {
        let mut cursor = Cursor(bytes);
        let dimensions = cursor.u32("dimensions")?;
        let split_after = cursor.u32("split_after")?;
        let n_trees = cursor.u32("tree count")? as usize;
        if cursor.0.len() / 4 < n_trees {
            return Err(MetadataError::Truncated("roots"));
        }
        let roots = (0..n_trees).map(|_| cursor.u32("roots")).collect::<Result<_, _>>()?;
        let len = cursor.take(1, "distance name length")?[0] as usize;
        let name = cursor.take(len, "distance name")?;
        let distance = std::str::from_utf8(name).map_err(|_| MetadataError::DistanceName)?;
        let len = cursor.take(1, "build context length")?[0] as usize;
        let context = cursor.take(len, "build context")?;
        let items = crate::node::decode_bitmap(cursor.0).map_err(MetadataError::Bitmap)?;
        let (distance, context) = (Cow::Borrowed(distance), Cow::Borrowed(context));
        Ok(Metadata { dimensions, split_after, roots, distance, context, items })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Found by the metadata_codec fuzzer: an item bitmap with run containers.
    #[test]
    fn run_container_bitmaps_are_refused() {
        let bytes = [
            0x00, 0x30, 0x38, 0x29, 0x00, 0x00, 0x05, 0x3c, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x3b, 0x30,
            0x00, 0x00, 0x3b, 0x25, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x27, 0x02,
        ];
        assert!(matches!(Metadata::decode(&bytes), Err(MetadataError::Bitmap(_))));
    }

    proptest! {
        #[test]
        fn round_trip(dimensions in any::<u32>(), split_after in any::<u32>(),
                      roots in proptest::collection::vec(any::<u32>(), 0..50),
                      distance in "[a-z-]{0,20}",
                      context in proptest::collection::vec(any::<u8>(), 0..8),
                      items in proptest::collection::vec(any::<u32>(), 0..200)) {
            let metadata = Metadata {
                dimensions, split_after, roots, distance: Cow::Owned(distance), context: Cow::Owned(context),
                items: items.into_iter().collect(),
            };
            let mut bytes = Vec::new();
            metadata.encode_into(&mut bytes);
            prop_assert_eq!(Metadata::decode(&bytes).unwrap(), metadata.clone());
            for cut in 0..bytes.len() {
                prop_assert!(Metadata::decode(&bytes[..cut]).is_err());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Metadata::decode(&bytes);
        }
    }
}
