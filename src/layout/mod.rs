//! The slots, where `add_item` writes vectors, and the read layer, what a
//! build writes and queries walk.
//!
//! Everything a query touches lives in LMDB values of many pages: the
//! slots (item ids and vectors, `slots.rs`), each tree's nodes in chunks
//! (`tree.rs`) and its partitions and run of codes (`partitions.rs`). A
//! value larger than a page lives in contiguous overflow pages, which `get`
//! hands back as one slice, valid for the whole transaction;
//! [`Layout::open`] looks up every value once, so a query makes no LMDB
//! call per node or per candidate. The build spools new values (`spool.rs`)
//! while it reads, and copies them in at the end.

mod directory;
mod partitions;
mod slots;
mod spool;
mod tree;

use heed::RoTxn;

pub(crate) use self::directory::Directory;
pub(crate) use self::directory::spool as spool_directory;
#[cfg(feature = "fuzzing")]
pub(crate) use self::partitions::Partitions;
pub(crate) use self::partitions::RunChunk;
pub(crate) use self::partitions::{
    PADDING, SlotCodes, TreeRun, centroid, encode as encode_partitions, open as open_runs,
};
pub(crate) use self::slots::{
    NewSlots, SlotGeometry, SlotTable, read_slot, reused_count, write_free_slots, write_slot,
};
pub(crate) use self::spool::{Spool, Spooled};
pub use self::tree::MAX_BUCKET;
#[cfg(feature = "fuzzing")]
pub(crate) use self::tree::encode;
pub(crate) use self::tree::{FinishedTree, NodeError, NodeView, TreeFile, TreeView};
use crate::error::Error;
use crate::key::{Key, NodeMode, TREE_SHIFT};
use crate::metadata::Metadata;
use crate::store::{self, RawDatabase};
use crate::vector::VectorCodec;
use crate::{Distance, Result};

/// The read layer of a built index, every value looked up.
#[derive(Debug, Clone)]
pub(crate) struct Layout<'t, D: Distance> {
    pub slots: SlotTable<'t, D>,
    pub directory: Directory<'t>,
    pub trees: Vec<TreeView<'t>>,
    /// The size of a split normal.
    pub normal: usize,
    /// How many nodes a search may visit: a valid forest has fewer, so a
    /// corrupted one (whose nodes share children) cannot keep a query long.
    pub visit_limit: u64,
}

impl<'t, D: Distance> Layout<'t, D> {
    /// Looks up the slots, the directory and the trees of `index` (three
    /// prefix scans), checking that every chunk is there with the right size.
    pub fn open(
        db: RawDatabase,
        rtxn: &'t RoTxn,
        index: u16,
        dimensions: usize,
        built: &Metadata,
    ) -> Result<Layout<'t, D>> {
        let roots = &built.roots;
        let slots = SlotTable::open(db, rtxn, index, dimensions, built.n_slots)?;
        let directory = Directory::open(db, rtxn, index, built.items.len())?;
        let trees = open_trees(db, rtxn, index, roots)?;
        let visit_limit = trees.iter().map(TreeView::units).sum();
        Ok(Layout { slots, directory, trees, normal: D::NormalCodec::size(dimensions), visit_limit })
    }

    /// The node at `addr` of tree `tree`, or an error naming its chunk.
    #[inline]
    pub fn node(&self, index: u16, tree: usize, addr: u32) -> Result<NodeView<'t>> {
        self.trees[tree].node(addr, self.normal).map_err(|e| node_error(index, tree, e))
    }
}

/// The key of the chunk that holds the node at `addr` of tree `tree`.
pub(crate) fn node_key(index: u16, tree: usize, addr: u32) -> Key {
    Key::tree(index, tree as u32, addr >> tree::CHUNK_SHIFT)
}

/// The error of a node that does not decode in tree `tree`.
#[cold]
pub(crate) fn node_error(index: u16, tree: usize, error: NodeError) -> Error {
    let addr = match error {
        NodeError::Missing(addr) | NodeError::Truncated(addr) => addr,
        NodeError::Kind { addr, .. } | NodeError::Order { addr, .. } => addr,
    };
    Error::corrupted(node_key(index, tree, addr), error)
}

/// The chunks of every tree of `index`, whose roots are `roots`.
pub(crate) fn open_trees<'t>(db: RawDatabase, rtxn: &'t RoTxn, index: u16, roots: &[u32]) -> Result<Vec<TreeView<'t>>> {
    let mut trees: Vec<TreeView> = roots.iter().map(|&root| TreeView { chunks: Vec::new(), root }).collect();
    for entry in store::iter_mode(db, rtxn, index, NodeMode::Tree)? {
        let (key, bytes) = entry?;
        let (tree, chunk) = ((key.id >> TREE_SHIFT) as usize, key.id & ((1 << TREE_SHIFT) - 1));
        match trees.get_mut(tree) {
            Some(view) if view.chunks.len() == chunk as usize => view.chunks.push(bytes),
            Some(_) => return Err(Error::corrupted(key, "the chunk before it is missing")),
            None => return Err(Error::corrupted(key, "the chunk belongs to no tree")),
        }
    }
    for (tree, view) in trees.iter().enumerate() {
        if (view.root >> tree::CHUNK_SHIFT) as usize >= view.chunks.len() {
            let chunk = view.chunks.len() as u32;
            return Err(Error::corrupted(Key::tree(index, tree as u32, chunk), "the chunk of the root is missing"));
        }
    }
    Ok(trees)
}
