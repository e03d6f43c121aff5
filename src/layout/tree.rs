//! Trees as packed chunks of nodes.
//!
//! A tree's nodes are laid out in post-order (children before their parent,
//! the root last) in a space of 4-byte units, cut into chunks of
//! [`CHUNK_UNITS`] units; chunk `c` of tree `t` is the value under
//! `(index, Tree, t << 20 | c)`. A node never crosses a chunk boundary and
//! ends at least 16 bytes before the next one, so a chunk's value (its
//! nodes, without the padding after the last one) fills at most 256 whole
//! LMDB pages. A node's address is its first unit: `chunk << 18 | offset`.
//!
//! Every node starts with a little-endian `u32` whose low two bits are its
//! kind and whose other bits are its length, for a bucket:
//!
//! | kind | node | then |
//! | --- | --- | --- |
//! | 0 | bucket of `n` slots (`n` in the high bits) | `n` slots, `u32`, ascending |
//! | 1 | split | `left: u32`, `right: u32`, `offset: f32`, the normal in the distance's codec, zero-padded to whole units |
//! | 2 | random split (no plane separated the items) | `left: u32`, `right: u32` |
//!
//! Children's addresses are smaller than their parent's: a walk can never
//! loop, and decoding refuses any node that says otherwise.

use std::path::Path;

use heed::RwTxn;

use super::spool::{Spool, Spooled};
use crate::Result;
use crate::error::Error;
use crate::key::Key;
use crate::store::RawDatabase;

/// Units per chunk: 1 MiB.
pub(crate) const CHUNK_SHIFT: u32 = 18;
pub(crate) const CHUNK_UNITS: u32 = 1 << CHUNK_SHIFT;
/// The units a chunk's nodes may fill: 1 MiB less 16 bytes, so that the
/// value and LMDB's page header fill 256 pages exactly.
pub(crate) const CHUNK_USABLE_UNITS: u32 = CHUNK_UNITS - 4;
/// The most slots a bucket can hold: a bucket fills at most one chunk.
pub const MAX_BUCKET: usize = (CHUNK_USABLE_UNITS - 1) as usize;

const BUCKET: u32 = 0;
const SPLIT: u32 = 1;
const RANDOM: u32 = 2;

/// A decoded node, borrowed from its chunk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum NodeView<'a> {
    /// A bucket: its slots, little-endian `u32`s.
    Bucket(Slots<'a>),
    /// A split plane: the normal's bytes in the distance's normal codec.
    Split { left: u32, right: u32, offset: f32, normal: &'a [u8] },
    /// A random split.
    Random { left: u32, right: u32 },
}

impl NodeView<'_> {
    /// The children of a split.
    pub fn children(&self) -> Option<[u32; 2]> {
        match *self {
            NodeView::Bucket(_) => None,
            NodeView::Split { left, right, .. } | NodeView::Random { left, right } => Some([left, right]),
        }
    }
}

/// The slots of a bucket, read in place.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Slots<'a>(&'a [u8]);

impl<'a> Slots<'a> {
    pub fn len(self) -> usize {
        self.0.len() / 4
    }

    pub fn iter(self) -> impl ExactSizeIterator<Item = u32> + 'a {
        self.0.chunks_exact(4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
}

/// Why a node does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NodeError {
    #[error("no node at address {0}: past the end of its chunk")]
    Missing(u32),
    #[error("the node at address {addr} has unknown kind {kind}")]
    Kind { addr: u32, kind: u32 },
    #[error("the node at address {0} runs past the end of its chunk")]
    Truncated(u32),
    #[error("the split at address {addr} points to {child}, which does not come before it")]
    Order { addr: u32, child: u32 },
}

/// The size in bytes of a split's normal, padded to whole units.
fn padded(normal: usize) -> usize {
    normal.next_multiple_of(4)
}

/// The units a node takes.
fn units(bytes: usize) -> u32 {
    (bytes / 4) as u32
}

fn word(bytes: &[u8], at: usize) -> Option<u32> {
    let word = bytes.get(at..at + 4)?;
    Some(u32::from_le_bytes([word[0], word[1], word[2], word[3]]))
}

/// Decodes the node at `offset` bytes of `chunk`, whose address is `addr`;
/// returns it with its size in bytes. `normal` is the size of a normal.
pub(crate) fn decode(
    chunk: &[u8],
    offset: usize,
    addr: u32,
    normal: usize,
) -> Result<(NodeView<'_>, usize), NodeError> {
    let head = word(chunk, offset).ok_or(NodeError::Missing(addr))?;
    let body = &chunk[offset + 4..];
    let (node, size) = match head & 3 {
        BUCKET => {
            let len = (head >> 2) as usize * 4;
            let slots = body.get(..len).ok_or(NodeError::Truncated(addr))?;
            (NodeView::Bucket(Slots(slots)), 4 + len)
        }
        kind @ (SPLIT | RANDOM) => {
            let (left, right) = (word(body, 0), word(body, 4));
            let (Some(left), Some(right)) = (left, right) else { return Err(NodeError::Truncated(addr)) };
            for child in [left, right] {
                if child >= addr {
                    return Err(NodeError::Order { addr, child });
                }
            }
            if kind == RANDOM {
                (NodeView::Random { left, right }, 12)
            } else {
                let offset = word(body, 8).map(f32::from_bits).ok_or(NodeError::Truncated(addr))?;
                let normal = body.get(12..12 + normal).ok_or(NodeError::Truncated(addr))?;
                (NodeView::Split { left, right, offset, normal }, 16 + padded(normal.len()))
            }
        }
        kind => return Err(NodeError::Kind { addr, kind }),
    };
    Ok((node, size))
}

fn encode_bucket(slots: impl Iterator<Item = u32>, len: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&((len as u32) << 2 | BUCKET).to_le_bytes());
    for slot in slots {
        out.extend_from_slice(&slot.to_le_bytes());
    }
}

/// Appends the encoding of `node` to `out`.
pub(crate) fn encode(node: &NodeView<'_>, out: &mut Vec<u8>) {
    match *node {
        NodeView::Bucket(slots) => encode_bucket(slots.iter(), slots.len(), out),
        NodeView::Split { left, right, offset, normal } => {
            let start = out.len();
            for word in [SPLIT, left, right, offset.to_bits()] {
                out.extend_from_slice(&word.to_le_bytes());
            }
            out.extend_from_slice(normal);
            out.resize(start + 16 + padded(normal.len()), 0);
        }
        NodeView::Random { left, right } => {
            for word in [RANDOM, left, right] {
                out.extend_from_slice(&word.to_le_bytes());
            }
        }
    }
}

/// The chunks of one tree, read in place.
#[derive(Debug, Clone)]
pub(crate) struct TreeView<'t> {
    pub chunks: Vec<&'t [u8]>,
    /// The root's address.
    pub root: u32,
}

impl<'t> TreeView<'t> {
    /// The 4-byte units the tree's nodes take, which bounds their number.
    pub fn units(&self) -> u64 {
        self.chunks.iter().map(|chunk| chunk.len() as u64 / 4).sum()
    }

    /// The node at `addr`.
    pub fn node(&self, addr: u32, normal: usize) -> Result<NodeView<'t>, NodeError> {
        let chunk = self.chunks.get((addr >> CHUNK_SHIFT) as usize).ok_or(NodeError::Missing(addr))?;
        let offset = (addr & (CHUNK_UNITS - 1)) as usize * 4;
        decode(chunk, offset, addr, normal).map(|(node, _)| node)
    }

    /// Every node in address order (post-order: children before parents),
    /// with its address.
    pub fn nodes(&self, normal: usize) -> impl Iterator<Item = Result<(u32, NodeView<'t>), NodeError>> + '_ {
        self.chunks.iter().enumerate().flat_map(move |(c, &chunk)| {
            let mut offset = 0;
            std::iter::from_fn(move || {
                if offset >= chunk.len() {
                    return None;
                }
                let addr = (c as u32) << CHUNK_SHIFT | units(offset);
                let decoded = decode(chunk, offset, addr, normal);
                offset = match &decoded {
                    Ok((_, size)) => offset + size,
                    Err(_) => chunk.len(),
                };
                Some(decoded.map(|(node, _)| (addr, node)))
            })
        })
    }
}

/// A tree being written: nodes appended in post-order to a spool, each
/// given its final address, a chunk per spooled value.
pub(crate) struct TreeFile {
    spool: Spool,
    /// The address of the next node.
    next: u32,
    normal: usize,
    scratch: Vec<u8>,
}

impl TreeFile {
    /// A tree to be spooled in `dir` (or the system's temporary directory);
    /// `normal` is the size of a normal.
    pub fn new(dir: Option<&Path>, normal: usize) -> TreeFile {
        TreeFile { spool: Spool::new(dir), next: 0, normal, scratch: Vec::new() }
    }

    /// Appends the node in `scratch`; returns its address.
    fn push(&mut self) -> Result<u32> {
        let size = units(self.scratch.len());
        let offset = self.next & (CHUNK_UNITS - 1);
        if offset + size > CHUNK_USABLE_UNITS && offset > 0 {
            // Start the next chunk; the padding is not stored.
            self.spool.next_value();
            let next = (u64::from(self.next >> CHUNK_SHIFT) + 1) << CHUNK_SHIFT;
            self.next = u32::try_from(next).map_err(|_| Error::TooManyNodes)?;
        }
        if size > CHUNK_USABLE_UNITS {
            return Err(Error::TooManyNodes);
        }
        let addr = self.next;
        self.spool.append(&self.scratch)?;
        self.next = addr.checked_add(size).ok_or(Error::TooManyNodes)?;
        Ok(addr)
    }

    /// Appends a bucket of `slots`, sorted in place.
    pub fn push_bucket(&mut self, slots: &mut [u32]) -> Result<u32> {
        if slots.len() > MAX_BUCKET {
            return Err(Error::TooManyNodes);
        }
        slots.sort_unstable();
        self.scratch.clear();
        encode_bucket(slots.iter().copied(), slots.len(), &mut self.scratch);
        self.push()
    }

    /// Appends a split with the encoded `normal`, or a random split when
    /// `normal` is empty.
    pub fn push_split(&mut self, left: u32, right: u32, offset: f32, normal: &[u8]) -> Result<u32> {
        debug_assert!(normal.is_empty() || normal.len() == self.normal);
        let node = match normal.is_empty() {
            true => NodeView::Random { left, right },
            false => NodeView::Split { left, right, offset, normal },
        };
        self.scratch.clear();
        encode(&node, &mut self.scratch);
        self.push()
    }

    /// Flushes the spool; `root` is the address of the tree's root.
    pub fn finish(self, root: u32) -> Result<FinishedTree> {
        Ok(FinishedTree { chunks: self.spool.finish()?, root })
    }
}

/// A tree in its spool, ready to be copied into LMDB.
pub(crate) struct FinishedTree {
    /// A value per chunk.
    pub chunks: Spooled,
    pub root: u32,
}

impl FinishedTree {
    /// Writes the tree as tree `tree` of `index`, a chunk per value.
    pub fn write(self, db: RawDatabase, wtxn: &mut RwTxn, index: u16, tree: u32) -> Result<()> {
        self.chunks.write(db, wtxn, |chunk| Key::tree(index, tree, chunk as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A finished tree's bytes, with the size of each chunk.
    fn view(tree: &mut FinishedTree) -> (Vec<u8>, Vec<u64>) {
        let (bytes, lens) = tree.chunks.read().unwrap();
        (bytes, lens.to_vec())
    }

    fn chunks<'a>(bytes: &'a [u8], lens: &[u64]) -> Vec<&'a [u8]> {
        let mut at = 0;
        lens.iter()
            .map(|&len| {
                let chunk = &bytes[at..at + len as usize];
                at += len as usize;
                chunk
            })
            .collect()
    }

    #[test]
    fn nodes_round_trip_and_children_come_first() {
        let mut file = TreeFile::new(None, 6);
        let a = file.push_bucket(&mut [9, 3, 5]).unwrap();
        let b = file.push_bucket(&mut []).unwrap();
        let c = file.push_split(a, b, 1.5, &[1, 2, 3, 4, 5, 6]).unwrap();
        let d = file.push_bucket(&mut [7]).unwrap();
        let root = file.push_split(c, d, 0.0, &[]).unwrap();
        let mut tree = file.finish(root).unwrap();
        let (bytes, lens) = view(&mut tree);
        let tree = TreeView { chunks: chunks(&bytes, &lens), root };
        let slots = |node| match node {
            NodeView::Bucket(slots) => slots.iter().collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(slots(tree.node(a, 6).unwrap()), [3, 5, 9]);
        assert_eq!(slots(tree.node(b, 6).unwrap()), Vec::<u32>::new());
        assert_eq!(
            tree.node(c, 6).unwrap(),
            NodeView::Split { left: a, right: b, offset: 1.5, normal: &[1, 2, 3, 4, 5, 6] }
        );
        assert_eq!(tree.node(root, 6).unwrap(), NodeView::Random { left: c, right: d });
        let all: Vec<u32> = tree.nodes(6).map(|n| n.unwrap().0).collect();
        assert_eq!(all, [a, b, c, d, root]);
    }

    #[test]
    fn nodes_never_cross_a_chunk() {
        let mut file = TreeFile::new(None, 0);
        let mut addrs = Vec::new();
        let mut big: Vec<u32> = (0..100_000).collect();
        for _ in 0..5 {
            addrs.push(file.push_bucket(&mut big).unwrap());
        }
        let mut tree = file.finish(addrs[4]).unwrap();
        let (bytes, lens) = view(&mut tree);
        assert_eq!(lens.len(), 3, "two buckets of 400 KB per 1 MiB chunk");
        assert!(lens.iter().all(|&len| len <= u64::from(CHUNK_USABLE_UNITS) * 4));
        let tree = TreeView { chunks: chunks(&bytes, &lens), root: addrs[4] };
        assert_eq!(addrs[2], CHUNK_UNITS);
        for addr in addrs {
            assert!(matches!(tree.node(addr, 0).unwrap(), NodeView::Bucket(slots) if slots.len() == 100_000));
        }
        let mut too_big: Vec<u32> = (0..MAX_BUCKET as u32 + 1).collect();
        assert!(TreeFile::new(None, 0).push_bucket(&mut too_big).is_err());
        let mut largest: Vec<u32> = (0..MAX_BUCKET as u32).collect();
        assert!(TreeFile::new(None, 0).push_bucket(&mut largest).is_ok());
    }

    #[test]
    fn malformed_nodes_are_errors() {
        let split =
            |left: u32, right: u32| [[SPLIT, left, right, 0].map(u32::to_le_bytes).concat(), vec![0; 4]].concat();
        assert_eq!(decode(&split(1, 0), 0, 1, 4), Err(NodeError::Order { addr: 1, child: 1 }));
        assert!(matches!(decode(&split(0, 0), 0, 5, 4), Ok((NodeView::Split { .. }, 20))));
        assert_eq!(decode(&split(0, 0), 0, 5, 8), Err(NodeError::Truncated(5)));
        assert_eq!(decode(&[3, 0, 0, 0], 0, 0, 0), Err(NodeError::Kind { addr: 0, kind: 3 }));
        assert_eq!(decode(&[8, 0, 0, 0, 1], 0, 0, 0), Err(NodeError::Truncated(0)));
        assert_eq!(decode(&[0, 0], 0, 0, 0), Err(NodeError::Missing(0)));
        for len in 0..24 {
            let bytes = split(0, 0);
            let _ = decode(&bytes[..len.min(bytes.len())], 0, 9, 4);
        }
    }
}
