//! The key of every entry: `(index, mode, id)`, seven bytes, big-endian.
//!
//! Big-endian makes LMDB's byte order the logical order, so each
//! `(index, mode)` pair is one contiguous range that a prefix scan walks.

use std::borrow::Cow;
use std::fmt;

use heed::{BoxedError, BytesDecode, BytesEncode};

/// The kind of entry a key points to. The byte values are part of the format.
///
/// Metadata, marks, items and slots are the *write layer*, which every
/// change touches; trees, the directory, partitions and runs the *read
/// layer*, which builds write and queries read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum NodeMode {
    /// Index-wide records: the build's metadata (id 0) and the index's
    /// header (id 1: format version, dimensions, distance).
    Metadata = 0,
    /// A change since the last build; the value keeps the slot the item was
    /// built in, if it was.
    Updated = 1,
    /// An item: the slot of its vector (up to format 4, its vector while it
    /// waited for a build).
    Item = 2,
    /// A chunk of slots in formats 3 and 4, which
    /// [`Writer::upgrade`](crate::Writer::upgrade) reads (tree nodes in
    /// formats 1 and 2).
    LegacySlots = 3,
    /// A chunk of one tree's nodes.
    Tree = 4,
    /// A chunk of the directory: the slot of each built item, in id order.
    Directory = 5,
    /// One tree's partitions: the place of each in the tree's run, and the
    /// codes of their centroids.
    Partitions = 6,
    /// A chunk of one tree's run: the slots and codes of its partitions'
    /// items, partition after partition.
    Runs = 7,
    /// A chunk of slots: item ids, headers and vectors in slot order,
    /// written as items are added. (Its byte is not 3, which arroy's items
    /// take: an arroy index migrated in place keeps its items under the same
    /// index while spinney writes the slots.)
    Slots = 8,
}

impl NodeMode {
    fn from_byte(byte: u8) -> Option<NodeMode> {
        match byte {
            0 => Some(NodeMode::Metadata),
            1 => Some(NodeMode::Updated),
            2 => Some(NodeMode::Item),
            3 => Some(NodeMode::LegacySlots),
            4 => Some(NodeMode::Tree),
            5 => Some(NodeMode::Directory),
            6 => Some(NodeMode::Partitions),
            7 => Some(NodeMode::Runs),
            8 => Some(NodeMode::Slots),
            _ => None,
        }
    }
}

/// The id of the metadata record under [`NodeMode::Metadata`].
pub(crate) const METADATA_ID: u32 = 0;
/// The id of the header record under [`NodeMode::Metadata`] (it held the
/// bare format version up to format 2).
pub(crate) const HEADER_ID: u32 = 1;
/// The id of the codebook record under [`NodeMode::Metadata`].
pub(crate) const CODEBOOK_ID: u32 = 2;
/// The id of the record of the free slots of the last build, ascending.
pub(crate) const FREE_SLOTS_ID: u32 = 3;
/// The id of the record of how many of them new vectors took since.
pub(crate) const REUSED_ID: u32 = 4;
/// A tree chunk's id is its tree number shifted by this, plus its chunk number.
pub(crate) const TREE_SHIFT: u32 = 20;

/// The key of an entry: which index, which kind of entry, which id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// The index (one database holds up to 65,536 of them).
    pub index: u16,
    /// The kind of entry.
    pub mode: NodeMode,
    /// The item id, the tree node id, or the record id for metadata.
    pub id: u32,
}

impl Key {
    /// The length of an encoded key in bytes.
    pub const SIZE: usize = 7;

    pub(crate) const fn new(index: u16, mode: NodeMode, id: u32) -> Key {
        Key { index, mode, id }
    }

    pub(crate) const fn metadata(index: u16) -> Key {
        Key::new(index, NodeMode::Metadata, METADATA_ID)
    }

    pub(crate) const fn header(index: u16) -> Key {
        Key::new(index, NodeMode::Metadata, HEADER_ID)
    }

    pub(crate) const fn codebook(index: u16) -> Key {
        Key::new(index, NodeMode::Metadata, CODEBOOK_ID)
    }

    pub(crate) const fn free_slots(index: u16) -> Key {
        Key::new(index, NodeMode::Metadata, FREE_SLOTS_ID)
    }

    pub(crate) const fn reused(index: u16) -> Key {
        Key::new(index, NodeMode::Metadata, REUSED_ID)
    }

    /// The partitions of tree `tree`.
    pub(crate) const fn partitions(index: u16, tree: u32) -> Key {
        Key::new(index, NodeMode::Partitions, tree)
    }

    /// Chunk `chunk` of tree `tree`'s run (`tree < 4096`, `chunk < 2^20`).
    pub(crate) const fn run(index: u16, tree: u32, chunk: u32) -> Key {
        Key::new(index, NodeMode::Runs, tree << TREE_SHIFT | chunk)
    }

    pub(crate) const fn updated(index: u16, item: u32) -> Key {
        Key::new(index, NodeMode::Updated, item)
    }

    pub(crate) const fn directory(index: u16, chunk: u32) -> Key {
        Key::new(index, NodeMode::Directory, chunk)
    }

    pub(crate) const fn slots(index: u16, chunk: u32) -> Key {
        Key::new(index, NodeMode::Slots, chunk)
    }

    /// Chunk `chunk` of tree `tree` (`tree < 4096`, `chunk < 2^20`).
    pub(crate) const fn tree(index: u16, tree: u32, chunk: u32) -> Key {
        Key::new(index, NodeMode::Tree, tree << TREE_SHIFT | chunk)
    }

    pub(crate) const fn item(index: u16, item: u32) -> Key {
        Key::new(index, NodeMode::Item, item)
    }

    /// The seven bytes of this key.
    pub fn to_bytes(self) -> [u8; Key::SIZE] {
        let mut bytes = [0; Key::SIZE];
        bytes[..2].copy_from_slice(&self.index.to_be_bytes());
        bytes[2] = self.mode as u8;
        bytes[3..].copy_from_slice(&self.id.to_be_bytes());
        bytes
    }

    /// Decodes a key, or says why the bytes are not one.
    pub fn from_bytes(bytes: &[u8]) -> Result<Key, KeyError> {
        let bytes: &[u8; Key::SIZE] = bytes.try_into().map_err(|_| KeyError::Length(bytes.len()))?;
        let mode = NodeMode::from_byte(bytes[2]).ok_or(KeyError::Mode(bytes[2]))?;
        let index = u16::from_be_bytes([bytes[0], bytes[1]]);
        let id = u32::from_be_bytes([bytes[3], bytes[4], bytes[5], bytes[6]]);
        Ok(Key { index, mode, id })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.mode {
            NodeMode::Metadata if self.id == METADATA_ID => return write!(f, "index {} metadata", self.index),
            NodeMode::Metadata if self.id == HEADER_ID => return write!(f, "index {} header", self.index),
            NodeMode::Metadata if self.id == CODEBOOK_ID => return write!(f, "index {} codebook", self.index),
            NodeMode::Metadata if self.id == FREE_SLOTS_ID => return write!(f, "index {} free slots", self.index),
            NodeMode::Metadata if self.id == REUSED_ID => return write!(f, "index {} reused slots", self.index),
            NodeMode::Metadata => "metadata record",
            NodeMode::Updated => "updated mark",
            NodeMode::Item => "item",
            NodeMode::Slots => "slot chunk",
            NodeMode::LegacySlots => "format-4 slot chunk",
            NodeMode::Directory => "directory chunk",
            NodeMode::Partitions => "partitions of tree",
            NodeMode::Runs => {
                let (tree, chunk) = (self.id >> TREE_SHIFT, self.id & ((1 << TREE_SHIFT) - 1));
                return write!(f, "index {} run of tree {tree} chunk {chunk}", self.index);
            }
            NodeMode::Tree => {
                let (tree, chunk) = (self.id >> TREE_SHIFT, self.id & ((1 << TREE_SHIFT) - 1));
                return write!(f, "index {} tree {tree} chunk {chunk}", self.index);
            }
        };
        write!(f, "index {} {kind} {}", self.index, self.id)
    }
}

/// Why bytes do not decode as a [`Key`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A key is exactly seven bytes.
    #[error("a key is 7 bytes, found {0}")]
    Length(usize),
    /// The mode byte is not one of [`NodeMode`]'s.
    #[error("unknown key mode byte {0}")]
    Mode(u8),
}

/// The heed codec of [`Key`].
#[derive(Debug, Clone, Copy)]
pub enum KeyCodec {}

impl<'a> BytesEncode<'a> for KeyCodec {
    type EItem = Key;

    fn bytes_encode(key: &'a Key) -> Result<Cow<'a, [u8]>, BoxedError> {
        Ok(Cow::Owned(key.to_bytes().to_vec()))
    }
}

impl<'a> BytesDecode<'a> for KeyCodec {
    type DItem = Key;

    fn bytes_decode(bytes: &'a [u8]) -> Result<Key, BoxedError> {
        Ok(Key::from_bytes(bytes)?)
    }
}

/// The first three bytes of a key: every entry of one kind in one index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    /// The index.
    pub index: u16,
    /// The kind of entry.
    pub mode: NodeMode,
}

impl Prefix {
    pub(crate) const fn new(index: u16, mode: NodeMode) -> Prefix {
        Prefix { index, mode }
    }
}

/// The heed codec of [`Prefix`], for prefix scans with [`heed::Database::prefix_iter`].
#[derive(Debug, Clone, Copy)]
pub enum PrefixCodec {}

impl<'a> BytesEncode<'a> for PrefixCodec {
    type EItem = Prefix;

    fn bytes_encode(prefix: &'a Prefix) -> Result<Cow<'a, [u8]>, BoxedError> {
        let [a, b] = prefix.index.to_be_bytes();
        Ok(Cow::Owned(vec![a, b, prefix.mode as u8]))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn mode() -> impl Strategy<Value = NodeMode> {
        prop_oneof![
            Just(NodeMode::Metadata),
            Just(NodeMode::Updated),
            Just(NodeMode::Item),
            Just(NodeMode::LegacySlots),
            Just(NodeMode::Slots),
            Just(NodeMode::Tree),
            Just(NodeMode::Directory),
            Just(NodeMode::Partitions),
            Just(NodeMode::Runs)
        ]
    }

    fn key() -> impl Strategy<Value = Key> {
        (any::<u16>(), mode(), any::<u32>()).prop_map(|(index, mode, id)| Key { index, mode, id })
    }

    proptest! {
        #[test]
        fn round_trip(key in key()) {
            prop_assert_eq!(Key::from_bytes(&key.to_bytes()), Ok(key));
        }

        #[test]
        fn byte_order_is_logical_order(a in key(), b in key()) {
            prop_assert_eq!(a.to_bytes().cmp(&b.to_bytes()), a.cmp(&b));
        }

        #[test]
        fn prefix_is_the_head_of_the_key(key in key()) {
            let prefix = Prefix::new(key.index, key.mode);
            let encoded = PrefixCodec::bytes_encode(&prefix).unwrap();
            prop_assert_eq!(&encoded[..], &key.to_bytes()[..3]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
            let _ = Key::from_bytes(&bytes);
        }
    }

    #[test]
    fn bad_keys_are_errors() {
        assert_eq!(Key::from_bytes(&[0; 6]), Err(KeyError::Length(6)));
        assert_eq!(Key::from_bytes(&[0, 0, 9, 0, 0, 0, 0]), Err(KeyError::Mode(9)));
    }
}
