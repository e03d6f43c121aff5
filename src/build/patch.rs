//! What a build changes in one tree, and how it is written.
//!
//! A tree's patch holds the nodes grown for it (in a temporary file, with
//! local ids), the existing nodes it rewrites, and the existing nodes it
//! frees. Final ids for the new nodes come from one [`IdAllocator`] used in
//! tree order by the single-threaded write, so the same build writes the same
//! bytes at any thread count.

use std::collections::BTreeMap;

use heed::RwTxn;
use roaring::RoaringBitmap;

use super::tmp_nodes::TmpNodes;
use crate::error::Error;
use crate::key::Key;
use crate::node::{Descendants, Node, encode_split};
use crate::store::RawDatabase;
use crate::{Distance, Result};

/// A node of a tree being built: one already in LMDB, or one of the patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeRef {
    /// An existing node id.
    Existing(u32),
    /// A local id in the patch's node file.
    New(u32),
}

/// The new content of an existing node.
#[derive(Debug)]
pub(crate) enum Rewrite {
    Bucket(RoaringBitmap),
    Split { left: NodeRef, right: NodeRef, left_count: u32, right_count: u32, offset: f32, normal: Vec<u8> },
}

/// The changes to one tree.
pub(crate) struct TreePatch {
    pub root: NodeRef,
    pub new_nodes: TmpNodes,
    pub rewrites: BTreeMap<u32, Rewrite>,
    pub freed: RoaringBitmap,
}

impl TreePatch {
    pub fn new(root: NodeRef, new_nodes: TmpNodes) -> TreePatch {
        TreePatch { root, new_nodes, rewrites: BTreeMap::new(), freed: RoaringBitmap::new() }
    }

    /// Marks an existing node as gone (and forgets any rewrite of it).
    pub fn free(&mut self, id: u32) {
        self.rewrites.remove(&id);
        self.freed.insert(id);
    }
}

/// Hands out node ids: freed ids first, smallest first, then fresh ones.
pub(crate) struct IdAllocator {
    free: std::vec::IntoIter<u32>,
    next: u64,
}

impl IdAllocator {
    pub fn new(free: &RoaringBitmap, next: u64) -> IdAllocator {
        IdAllocator { free: free.iter().collect::<Vec<_>>().into_iter(), next }
    }

    fn allocate(&mut self) -> Result<u32> {
        if let Some(id) = self.free.next() {
            return Ok(id);
        }
        let id = u32::try_from(self.next).map_err(|_| Error::TooManyNodes)?;
        self.next += 1;
        Ok(id)
    }
}

/// Writes nodes, appending those whose key is past the last key of the
/// database: LMDB fills the pages it appends to, where ordinary inserts in
/// key order leave every page split in half. Tree nodes are the last keys of
/// an index, so a fresh build of the last index appends its whole forest.
pub(crate) struct NodeWriter {
    /// The last key of the database, once read.
    last: Option<Option<Key>>,
}

impl NodeWriter {
    pub fn new() -> NodeWriter {
        NodeWriter { last: None }
    }

    fn put(&mut self, db: RawDatabase, wtxn: &mut RwTxn, key: Key, value: &[u8]) -> Result<()> {
        let last = match self.last {
            Some(last) => last,
            None => db.remap_data_type::<heed::types::DecodeIgnore>().last(wtxn)?.map(|(last, ())| last),
        };
        if last.is_none_or(|last| last < key) {
            db.put_with_flags(wtxn, heed::PutFlags::APPEND, &key, value)?;
            self.last = Some(Some(key));
        } else {
            db.put(wtxn, &key, value)?;
            self.last = Some(last);
        }
        Ok(())
    }
}

/// Writes one tree's patch into LMDB and returns its root's final id.
///
/// Only the new nodes reachable from the root or from a rewrite are written:
/// a subtree grown and then replaced during the same update is dropped here.
pub(crate) fn write_patch<D: Distance>(
    db: RawDatabase,
    wtxn: &mut RwTxn,
    index: u16,
    patch: TreePatch,
    ids: &mut IdAllocator,
    writer: &mut NodeWriter,
) -> Result<u32> {
    let TreePatch { root, new_nodes, rewrites, .. } = patch;
    let mut nodes = new_nodes.finish()?;
    let bytes = nodes.read()?;
    let encoded: Vec<&[u8]> = nodes.nodes(&bytes).collect();
    let decode = |local: u32| -> Result<Node<'_, D>> {
        let bytes =
            encoded.get(local as usize).ok_or_else(|| Error::corrupted(Key::tree(index, local), "no such new node"))?;
        Node::decode(bytes).map_err(|e| Error::corrupted(Key::tree(index, local), e))
    };

    // Which new nodes are reachable.
    let mut live = vec![false; encoded.len()];
    let mut stack: Vec<u32> = Vec::new();
    let reach = |node: NodeRef, stack: &mut Vec<u32>| {
        if let NodeRef::New(local) = node {
            stack.push(local);
        }
    };
    reach(root, &mut stack);
    for rewrite in rewrites.values() {
        if let Rewrite::Split { left, right, .. } = rewrite {
            reach(*left, &mut stack);
            reach(*right, &mut stack);
        }
    }
    while let Some(local) = stack.pop() {
        let Some(seen) = live.get_mut(local as usize) else {
            return Err(Error::corrupted(Key::tree(index, local), "a new node points outside its file"));
        };
        if std::mem::replace(seen, true) {
            continue;
        }
        if let Node::SplitPlaneNormal(split) = decode(local)? {
            stack.extend([split.left, split.right]);
        }
    }

    // Final ids, in local order.
    let mut final_ids = vec![u32::MAX; encoded.len()];
    for (local, _) in live.iter().enumerate().filter(|(_, live)| **live) {
        final_ids[local] = ids.allocate()?;
    }
    let resolve = |node: NodeRef| match node {
        NodeRef::Existing(id) => id,
        NodeRef::New(local) => final_ids[local as usize],
    };

    let mut scratch = Vec::new();
    for (local, _) in live.iter().enumerate().filter(|(_, live)| **live) {
        let key = Key::tree(index, final_ids[local]);
        let value = match decode(local as u32)? {
            Node::SplitPlaneNormal(mut split) => {
                split.left = final_ids[split.left as usize];
                split.right = final_ids[split.right as usize];
                scratch.clear();
                Node::<D>::SplitPlaneNormal(split).encode_into(&mut scratch);
                &scratch[..]
            }
            _ => encoded[local],
        };
        writer.put(db, wtxn, key, value)?;
    }
    for (id, rewrite) in &rewrites {
        scratch.clear();
        match rewrite {
            Rewrite::Bucket(items) => Node::<D>::Descendants(Descendants { items: std::borrow::Cow::Borrowed(items) })
                .encode_into(&mut scratch),
            Rewrite::Split { left, right, left_count, right_count, offset, normal } => {
                let links = [resolve(*left), resolve(*right), *left_count, *right_count];
                encode_split(links, *offset, normal, &mut scratch);
            }
        }
        writer.put(db, wtxn, Key::tree(index, *id), &scratch)?;
    }
    Ok(resolve(root))
}
