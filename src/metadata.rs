//! The two index-wide records: the header, written with an index's first
//! item, and the metadata of the last build.
//!
//! The header, under `(index, Metadata, 1)`, little-endian:
//!
//! | bytes | field |
//! | --- | --- |
//! | 4 | format version (`u32`); up to format 2 the record held only this |
//! | 4 | dimensions (`u32`) |
//! | 1 | length `l` of the distance name |
//! | l | the distance name (UTF-8) |
//!
//! The metadata, under `(index, Metadata, 0)`, exists exactly when the index
//! is built; a build deletes it first and writes it last:
//!
//! | bytes | field |
//! | --- | --- |
//! | 4 | `split_after` used by the build (`u32`) |
//! | 4 | number of trees `t` (`u32`) |
//! | 4 × t | the address of each tree's root (`u32`) |
//! | 4 | number of slots, free ones included (`u32`) |
//! | 1 | length `c` of the distance's build context |
//! | c | the build context (for the dot product, the largest norm as `f32`) |
//! | 4 | length `b` of the item bitmap (`u32`) |
//! | b | roaring bitmap of the item ids the build holds |
//! | rest | roaring bitmap of the free slots |

use std::borrow::Cow;

use roaring::RoaringBitmap;

/// What every writer and reader of an index checks first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    /// The format version.
    pub version: u32,
    /// The number of dimensions.
    pub dimensions: u32,
    /// The name of the distance.
    pub distance: Cow<'a, str>,
}

/// What a build leaves behind for readers.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata<'a> {
    /// The bucket size the trees were grown with.
    pub split_after: u32,
    /// The address of each tree's root, in tree order.
    pub roots: Vec<u32>,
    /// The number of slots, free ones included.
    pub n_slots: u32,
    /// The distance's build context, as bytes.
    pub context: Cow<'a, [u8]>,
    /// The items the build holds.
    pub items: RoaringBitmap,
    /// The slots no item holds.
    pub free: RoaringBitmap,
}

/// Why bytes do not decode as a [`Header`] or [`Metadata`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The record ends before a field.
    #[error("the record ends before its {0}")]
    Truncated(&'static str),
    /// The record goes on after its last field.
    #[error("the record has {0} bytes after its last field")]
    Trailing(usize),
    /// The distance name is not UTF-8.
    #[error("the distance name is not UTF-8")]
    DistanceName,
    /// A bitmap does not decode.
    #[error("invalid bitmap: {0}")]
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

    /// A length byte, then that many bytes.
    fn short(&mut self, field: &'static str) -> Result<&'a [u8], MetadataError> {
        let len = self.take(1, field)?[0] as usize;
        self.take(len, field)
    }

    fn end(&self) -> Result<(), MetadataError> {
        if self.0.is_empty() { Ok(()) } else { Err(MetadataError::Trailing(self.0.len())) }
    }
}

/// Appends a length byte and `bytes` (at most 255 of them) to `out`.
fn push_short(bytes: &[u8], out: &mut Vec<u8>) {
    let len = u8::try_from(bytes.len()).expect("distance names and contexts are short");
    out.push(len);
    out.extend_from_slice(bytes);
}

impl<'a> Header<'a> {
    /// Appends the encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.dimensions.to_le_bytes());
        push_short(self.distance.as_bytes(), out);
    }

    /// The format version of an encoded header: its first four bytes,
    /// whatever the format.
    pub fn version(bytes: &[u8]) -> Result<u32, MetadataError> {
        Cursor(bytes).u32("version")
    }

    /// Decodes a header, checking every length.
    pub fn decode(bytes: &'a [u8]) -> Result<Header<'a>, MetadataError> {
        let mut cursor = Cursor(bytes);
        let version = cursor.u32("version")?;
        let dimensions = cursor.u32("dimensions")?;
        let name = cursor.short("distance name")?;
        let distance = std::str::from_utf8(name).map_err(|_| MetadataError::DistanceName)?;
        cursor.end()?;
        Ok(Header { version, dimensions, distance: Cow::Borrowed(distance) })
    }
}

impl<'a> Metadata<'a> {
    /// Appends the encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.split_after.to_le_bytes());
        let n_trees = u32::try_from(self.roots.len()).expect("at most MAX_TREES trees");
        out.extend_from_slice(&n_trees.to_le_bytes());
        for root in &self.roots {
            out.extend_from_slice(&root.to_le_bytes());
        }
        out.extend_from_slice(&self.n_slots.to_le_bytes());
        push_short(&self.context, out);
        let items = u32::try_from(self.items.serialized_size()).expect("a bitmap of u32s is below 4 GiB");
        out.extend_from_slice(&items.to_le_bytes());
        // Writing into a Vec cannot fail.
        let _ = self.items.serialize_into(&mut *out);
        let _ = self.free.serialize_into(&mut *out);
    }

    /// A copy that borrows nothing.
    pub fn to_static(&self) -> Metadata<'static> {
        Metadata {
            split_after: self.split_after,
            roots: self.roots.clone(),
            n_slots: self.n_slots,
            context: Cow::Owned(self.context.to_vec()),
            items: self.items.clone(),
            free: self.free.clone(),
        }
    }

    /// Decodes a record, checking every length.
    pub fn decode(bytes: &'a [u8]) -> Result<Metadata<'a>, MetadataError> {
        let mut cursor = Cursor(bytes);
        let split_after = cursor.u32("split_after")?;
        let n_trees = cursor.u32("tree count")? as usize;
        if cursor.0.len() / 4 < n_trees {
            return Err(MetadataError::Truncated("roots"));
        }
        let roots = (0..n_trees).map(|_| cursor.u32("roots")).collect::<Result<_, _>>()?;
        let n_slots = cursor.u32("slot count")?;
        let context = cursor.short("build context")?;
        let len = cursor.u32("item bitmap length")? as usize;
        let items = decode_bitmap(cursor.take(len, "item bitmap")?).map_err(MetadataError::Bitmap)?;
        let free = decode_bitmap(cursor.0).map_err(MetadataError::Bitmap)?;
        Ok(Metadata { split_after, roots, n_slots, context: Cow::Borrowed(context), items, free })
    }
}

/// The roaring cookie of a serialization with run containers, which
/// spinney never writes.
const RUN_CONTAINER_COOKIE: u16 = 12347;

/// Decodes a whole roaring bitmap, refusing run containers (the encoder never
/// writes them) and trailing bytes.
pub(crate) fn decode_bitmap(bytes: &[u8]) -> Result<RoaringBitmap, String> {
    if let [a, b, ..] = *bytes {
        if u16::from_le_bytes([a, b]) == RUN_CONTAINER_COOKIE {
            return Err("run containers are not part of the format".into());
        }
    }
    let items = RoaringBitmap::deserialize_from(bytes).map_err(|e| e.to_string())?;
    match bytes.len().checked_sub(items.serialized_size()) {
        Some(0) => Ok(items),
        _ => Err(format!("{} bytes for a bitmap of {}", bytes.len(), items.serialized_size())),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Found by the metadata_codec fuzzer (format 2): a bitmap with run containers.
    #[test]
    fn run_container_bitmaps_are_refused() {
        let bitmap = [0x3b, 0x30, 0x00, 0x00, 0x3b, 0x25, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x27, 0x02];
        assert!(decode_bitmap(&bitmap).is_err());
    }

    proptest! {
        #[test]
        fn metadata_round_trip(split_after in any::<u32>(), roots in proptest::collection::vec(any::<u32>(), 0..20),
                               n_slots in any::<u32>(),
                               context in proptest::collection::vec(any::<u8>(), 0..8),
                               items in proptest::collection::vec(any::<u32>(), 0..200),
                               free in proptest::collection::vec(any::<u32>(), 0..50)) {
            let metadata = Metadata {
                split_after, roots, n_slots, context: Cow::Owned(context),
                items: items.into_iter().collect(), free: free.into_iter().collect(),
            };
            let mut bytes = Vec::new();
            metadata.encode_into(&mut bytes);
            prop_assert_eq!(Metadata::decode(&bytes).unwrap(), metadata.clone());
            for cut in 0..bytes.len() {
                prop_assert!(Metadata::decode(&bytes[..cut]).is_err());
            }
        }

        #[test]
        fn header_round_trip(version in any::<u32>(), dimensions in any::<u32>(), distance in "[a-z-]{0,30}") {
            let header = Header { version, dimensions, distance: Cow::Owned(distance) };
            let mut bytes = Vec::new();
            header.encode_into(&mut bytes);
            prop_assert_eq!(Header::decode(&bytes).unwrap(), header);
            prop_assert_eq!(Header::version(&bytes), Ok(version));
            for cut in 0..bytes.len() {
                prop_assert!(Header::decode(&bytes[..cut]).is_err());
            }
            bytes.push(0);
            prop_assert!(Header::decode(&bytes).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Metadata::decode(&bytes);
            let _ = Header::decode(&bytes);
        }
    }
}
