//! [`Builder`]: the options of a build and the ordered steps that run it.
//!
//! 1. Read every item in place ([`MainStep::RetrievingItems`]) and compute
//!    what the distance needs over all of them (the largest norm for the dot
//!    product).
//! 2. Grow the trees in parallel with rayon, each into its own temporary
//!    file ([`MainStep::GrowingTrees`]). Nothing is written to LMDB yet, and
//!    `cancel` is polled at every node.
//! 3. Delete the metadata, the old trees and the change marks
//!    ([`MainStep::RemovingOldTrees`]), then copy every node into LMDB in one
//!    single-threaded pass that gives the final node ids
//!    ([`MainStep::WritingNodes`]).
//! 4. Write the metadata and the format version last
//!    ([`MainStep::WritingMetadata`]).
//!
//! A build that fails or is cancelled before step 3 has written nothing; one
//! that fails during step 3 or 4 leaves the index without metadata in the
//! transaction, which readers refuse with [`Error::NotBuilt`] rather than
//! answer from a half-written forest. Either way, aborting the transaction
//! keeps the last committed index.

mod frozen;
mod grow;
mod split;
mod tmp_nodes;

use std::borrow::Cow;

use heed::RwTxn;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use roaring::RoaringBitmap;
use tracing::{debug, info};

use self::frozen::FrozenItems;
use self::grow::{GrowContext, grow_tree};
use self::tmp_nodes::TreeNodes;
use crate::error::Error;
use crate::key::{Key, NodeMode};
use crate::metadata::Metadata;
use crate::node::Node;
use crate::progress::{MainStep, SubStep, WriterProgress};
use crate::store;
use crate::writer::Writer;
use crate::{Distance, Result, version};

/// The most trees an index can have.
pub const MAX_TREES: usize = 4096;

/// The number of trees a build grows when [`Builder::n_trees`] is not set.
///
/// The forest is sized to cost about half as much disk as the vectors. A
/// tree stores each item once in a bucket (about 4 bytes) and one split
/// normal of `4 × dimensions` bytes per bucket, and buckets hold about
/// `0.6 × split_after` items on average, so a tree costs about
/// `4 × dimensions / (0.6 × split_after) + 4` bytes per item against
/// `4 × dimensions` for the vector. Hence
///
/// ```text
/// n_trees = clamp(ceil(2 × dimensions / (4 × dimensions / (0.6 × split_after) + 4)), 10, 512)
/// ```
///
/// with `split_after` from [`default_split_after`], and a single tree when
/// every item fits in one bucket (all trees would be the same). This gives 12
/// trees at 64 dimensions, 24 at 128 and 64 at 768. Measured on SIFT small
/// (10k × 128, see the README), 24 trees take 1.9× the raw vectors on disk
/// in all (leaves and LMDB's page overhead included; 10 trees take 1.7×, 50
/// take 2.7×) and reach recall@10 0.977 at `search_k = 960`.
pub fn default_n_trees(n_items: u64, dimensions: usize) -> usize {
    let split_after = default_split_after(dimensions);
    if n_items <= split_after as u64 {
        return 1;
    }
    let dimensions = dimensions as f64;
    let bytes_per_item_per_tree = 4.0 * dimensions / (0.6 * split_after as f64) + 4.0;
    ((2.0 * dimensions / bytes_per_item_per_tree).ceil() as usize).clamp(10, 512)
}

/// The bucket size a build uses when [`Builder::split_after`] is not set:
/// the number of dimensions, clamped to `[16, 256]`.
pub fn default_split_after(dimensions: usize) -> usize {
    dimensions.clamp(16, 256)
}

/// The options of a build; created by [`Writer::builder`].
pub struct Builder<'a, D: Distance, R: Rng + SeedableRng> {
    writer: &'a Writer<D>,
    rng: &'a mut R,
    n_trees: Option<usize>,
    split_after: Option<usize>,
    available_memory: Option<usize>,
    cancel: Box<dyn Fn() -> bool + Sync + Send + 'a>,
    progress: Box<dyn Fn(WriterProgress) + Sync + Send + 'a>,
}

impl<'a, D: Distance, R: Rng + SeedableRng> Builder<'a, D, R> {
    pub(crate) fn new(writer: &'a Writer<D>, rng: &'a mut R) -> Builder<'a, D, R> {
        Builder {
            writer,
            rng,
            n_trees: None,
            split_after: None,
            available_memory: None,
            cancel: Box::new(|| false),
            progress: Box::new(|_| ()),
        }
    }

    /// The number of trees. More trees give better recall for the same
    /// search effort, and cost build time and disk. Unset, the count comes
    /// from [`default_n_trees`]. Values are clamped to `1..=MAX_TREES`.
    pub fn n_trees(&mut self, n_trees: usize) -> &mut Self {
        self.n_trees = Some(n_trees.clamp(1, MAX_TREES));
        self
    }

    /// The largest bucket: a node with more items is split. Smaller buckets
    /// make deeper trees, with more split nodes on disk. Unset, it is
    /// [`default_split_after`]. Zero counts as one.
    pub fn split_after(&mut self, split_after: usize) -> &mut Self {
        self.split_after = Some(split_after.max(1));
        self
    }

    /// A bound, in bytes, on the working memory of tree growth: trees are
    /// grown in parallel batches small enough that their scratch (about 8
    /// bytes per item per tree) fits. The vectors themselves are read in
    /// place and are not counted. Unset, as many trees grow at once as
    /// rayon has threads.
    pub fn available_memory(&mut self, bytes: usize) -> &mut Self {
        self.available_memory = Some(bytes);
        self
    }

    /// A callback polled often during the build; once it returns `true` the
    /// build stops with [`Error::BuildCancelled`].
    pub fn cancel(&mut self, cancel: impl Fn() -> bool + Sync + Send + 'a) -> &mut Self {
        self.cancel = Box::new(cancel);
        self
    }

    /// A callback told of each step of the build, and of progress inside it.
    pub fn progress(&mut self, progress: impl Fn(WriterProgress) + Sync + Send + 'a) -> &mut Self {
        self.progress = Box::new(progress);
        self
    }

    fn report(&self, main: MainStep, sub: Option<SubStep>) {
        (self.progress)(WriterProgress { main, sub });
    }

    fn check_cancel(&self) -> Result<()> {
        if (self.cancel)() { Err(Error::BuildCancelled) } else { Ok(()) }
    }

    /// Builds the trees of the index over its current items, inside `wtxn`.
    ///
    /// On error, abort the transaction: the committed index is untouched.
    pub fn build(&mut self, wtxn: &mut RwTxn) -> Result<()> {
        let writer = self.writer;
        writer.check_dimensions()?;
        let (db, index, dimensions) = (writer.db, writer.index, writer.dimensions);
        if let Some(metadata) = store::metadata(db, wtxn, index)? {
            if metadata.distance != D::NAME {
                let found = metadata.distance.into_owned();
                return Err(Error::DistanceMismatch { index, expected: D::NAME, found });
            }
            if metadata.dimensions as usize != dimensions {
                let found = metadata.dimensions as usize;
                return Err(Error::IndexDimensionMismatch { index, expected: dimensions, found });
            }
        }
        self.check_cancel()?;
        let seed: u64 = self.rng.random();

        self.report(MainStep::RetrievingItems, None);
        let (trees, items, split_after) = {
            let frozen = FrozenItems::<D>::read(db, wtxn, index, dimensions)?;
            let n_trees = self.n_trees.unwrap_or_else(|| default_n_trees(frozen.len() as u64, dimensions));
            let split_after = self.split_after.unwrap_or_else(|| default_split_after(dimensions));
            info!(index, items = frozen.len(), n_trees, split_after, "growing trees");
            let shared = GrowContext {
                frozen: &frozen,
                context: D::context(frozen.leaves.iter().copied()),
                split_after,
                seed,
                tmpdir: writer.tmpdir.as_deref(),
                cancel: &*self.cancel,
            };
            let trees = self.grow_trees(&shared, n_trees)?;
            let items = RoaringBitmap::from_sorted_iter(frozen.ids.iter().copied())
                .map_err(|_| Error::corrupted(Key::item(index, 0), "item keys out of order"))?;
            (trees, items, split_after)
        };
        self.check_cancel()?;

        self.report(MainStep::RemovingOldTrees, None);
        db.delete(wtxn, &Key::version(index))?;
        db.delete(wtxn, &Key::metadata(index))?;
        store::delete_mode(db, wtxn, index, NodeMode::Tree)?;
        store::delete_mode(db, wtxn, index, NodeMode::Updated)?;

        let roots = self.write_nodes(wtxn, trees)?;

        self.report(MainStep::WritingMetadata, None);
        let metadata = Metadata {
            // Checked by `check_dimensions` above.
            dimensions: dimensions as u32,
            split_after: u32::try_from(split_after).unwrap_or(u32::MAX),
            roots,
            distance: Cow::Borrowed(D::NAME),
            items,
        };
        let mut bytes = Vec::new();
        metadata.encode_into(&mut bytes);
        db.put(wtxn, &Key::metadata(index), &bytes)?;
        db.put(wtxn, &Key::version(index), &version::encode())?;
        Ok(())
    }

    fn grow_trees(&self, shared: &GrowContext<'_, '_, D>, n_trees: usize) -> Result<Vec<TreeNodes>> {
        self.report(MainStep::GrowingTrees, Some(SubStep { unit: "trees", done: 0, total: n_trees as u64 }));
        let per_tree = shared.frozen.len().saturating_mul(8).max(1);
        let batch = match self.available_memory {
            Some(bytes) => (bytes / per_tree).clamp(1, n_trees.max(1)),
            None => n_trees.max(1),
        };
        let mut trees = Vec::with_capacity(n_trees);
        let all: Vec<u64> = (0..n_trees as u64).collect();
        for chunk in all.chunks(batch) {
            let grown: Vec<TreeNodes> = chunk.par_iter().map(|&tree| grow_tree(shared, tree)).collect::<Result<_>>()?;
            trees.extend(grown);
            let done = trees.len() as u64;
            self.report(MainStep::GrowingTrees, Some(SubStep { unit: "trees", done, total: n_trees as u64 }));
        }
        Ok(trees)
    }

    /// Copies every tree into LMDB, tree after tree, giving each a base id;
    /// returns the roots.
    fn write_nodes(&self, wtxn: &mut RwTxn, trees: Vec<TreeNodes>) -> Result<Vec<u32>> {
        let (db, index) = (self.writer.db, self.writer.index);
        let total: usize = trees.iter().map(TreeNodes::len).sum();
        let total = u32::try_from(total).map_err(|_| Error::TooManyNodes)?;
        let mut roots = Vec::with_capacity(trees.len());
        let mut base = 0u32;
        let mut scratch = Vec::new();
        for (tree, mut nodes) in trees.into_iter().enumerate() {
            self.check_cancel()?;
            self.report(
                MainStep::WritingNodes,
                Some(SubStep { unit: "nodes", done: base.into(), total: total.into() }),
            );
            let bytes = nodes.read()?;
            for (local, encoded) in (0u32..).zip(nodes.nodes(&bytes)) {
                let key = Key::tree(index, base + local);
                let value = match Node::<D>::decode(encoded).map_err(|e| Error::corrupted(key, e))? {
                    Node::SplitPlaneNormal(mut split) => {
                        split.left += base;
                        split.right += base;
                        scratch.clear();
                        Node::<D>::SplitPlaneNormal(split).encode_into(&mut scratch);
                        &scratch[..]
                    }
                    _ => encoded,
                };
                db.put(wtxn, &key, value)?;
            }
            roots.push(base + nodes.root);
            debug!(tree, nodes = nodes.len(), "tree written");
            base += nodes.len() as u32;
        }
        Ok(roots)
    }
}
