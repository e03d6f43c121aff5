//! [`Builder`]: the options of a build and the ordered steps that run it.
//!
//! 1. Read what changed since the last build ([`MainStep::RetrievingItems`]):
//!    the `updated` marks, with the leaf each changed item had when the trees
//!    placed it and the leaf it has now.
//! 2. Update the trees that are kept, in parallel, each through its own
//!    nested read transaction ([`MainStep::UpdatingTrees`], see `update.rs`):
//!    the work follows the paths of the changed items only.
//! 3. Grow the trees that are missing (all of them on the first build, or
//!    when `split_after` changes) in parallel, each into its own temporary
//!    file ([`MainStep::GrowingTrees`]): their top levels together, in
//!    passes that read each vector once for all of them (see
//!    `top_levels.rs`), the rest depth first, tree by tree. Nothing is
//!    written to LMDB until here, and `cancel` is polled at every node (in
//!    the shared levels, at every level and every 1,024 items).
//! 4. Delete the metadata, the freed nodes and the change marks
//!    ([`MainStep::RemovingOldTrees`]), then write every new or changed node
//!    in one single-threaded pass that gives the final node ids
//!    ([`MainStep::WritingNodes`]).
//! 5. Write the metadata and the format version last
//!    ([`MainStep::WritingMetadata`]).
//!
//! A build that fails or is cancelled before step 4 has written nothing; one
//! that fails during step 4 or 5 leaves the index without metadata in the
//! transaction, which readers refuse with [`Error::NotBuilt`] rather than
//! answer from a half-written forest. Either way, aborting the transaction
//! keeps the last committed index.

mod changes;
mod frozen;
mod grow;
mod patch;
mod split;
mod tmp_nodes;
mod top_levels;
mod update;

use std::borrow::Cow;

use heed::{RoTxn, RwTxn};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use roaring::RoaringBitmap;
use tracing::info;

use self::changes::Changes;
use self::frozen::FrozenItems;
use self::grow::{GrowParams, Grower, tree_rng};
use self::patch::{IdAllocator, NodeRef, NodeWriter, TreePatch, write_patch};
use self::tmp_nodes::TmpNodes;
use self::update::{UpdateContext, subtree, update_tree};
use crate::error::Error;
use crate::key::{Key, NodeMode};
use crate::metadata::Metadata;
use crate::node::SPLIT_HEADER_SIZE;
use crate::progress::{MainStep, SubStep, WriterProgress};
use crate::store;
use crate::vector::VectorCodec;
use crate::writer::Writer;
use crate::{Distance, Result, version};

/// How many kept trees are updated at once (each holds a nested read
/// transaction while it is updated).
const UPDATE_BATCH: usize = 64;

/// The scratch a tree takes while it grows, per item, in bytes: its item
/// positions and their slots in the shared levels (4 bytes each), the sign
/// of each item's margin and the side each takes in a split (1 byte each).
const SCRATCH_PER_ITEM_AND_TREE: usize = 10;
/// The least scratch a build allows itself when `available_memory` is unset.
const DEFAULT_SCRATCH_FLOOR: usize = 64 << 20;

/// The most trees an index can have.
pub const MAX_TREES: usize = 4096;

/// The number of trees a build of an index with the distance `D` grows when
/// [`Builder::n_trees`] is not set.
///
/// The whole index, items and trees, is sized to fill about 1.5 times the
/// vectors as stored (`v` bytes each: `4 × dimensions` for `f32`s,
/// `dimensions / 8` rounded up to whole 8-byte words for bits). An item
/// takes `item` bytes of LMDB pages: its value and key in a shared page, or
/// whole overflow pages when it is too large to share one (from about 500
/// `f32` dimensions with 4 KiB pages). A tree stores each item once in a
/// bucket (about 5 bytes with the bucket's own overhead) and one split per
/// bucket, of `split` bytes of pages, and buckets hold about
/// `0.6 × split_after` items on average. Hence
///
/// ```text
/// n_trees = clamp(floor(max(1.5 × v − item, 0.15 × v) / (split / (0.6 × split_after) + 5)), 10, 512)
/// ```
///
/// with `split_after` from [`default_split_after`], and a single tree when
/// every item fits in one bucket (all trees would be the same). The
/// `0.15 × v` floor serves the sizes whose items alone take (nearly) 1.5
/// times their vectors, such as 512 or 1,024 `f32` dimensions, whose items
/// need whole overflow pages: there the index exceeds 1.5×. For `f32`s this
/// gives 20 trees at 128 dimensions and 26 at 768, where each item already
/// fills a 4 KiB overflow page (1.33 times its vector); distances over bits
/// get 10 trees up to 768 dimensions. The count follows the page
/// arithmetic, so it is not monotonic: 102 trees at 1,000 `f32` dimensions,
/// whose items leave room in their overflow page, 19 at 1,024, whose items
/// need two pages. The snapshot test
/// `default_tree_counts` pins the table; the README has the disk and recall
/// it gives.
pub fn default_n_trees<D: Distance>(n_items: u64, dimensions: usize) -> usize {
    let split_after = default_split_after(dimensions);
    if n_items <= split_after as u64 {
        return 1;
    }
    let vector = D::Codec::size(dimensions);
    let item = store::entry_bytes(1 + size_of::<D::Header>() + vector);
    let split = store::entry_bytes(1 + SPLIT_HEADER_SIZE + D::NormalCodec::size(dimensions));
    let per_tree = split / (0.6 * split_after as f64) + 5.0;
    // Where the items alone nearly fill the budget (whole overflow pages at
    // 512 or 1,024 f32 dimensions), the trees still get 0.15 × v.
    let budget = (1.5 * vector as f64 - item).max(0.15 * vector as f64);
    ((budget / per_tree).floor() as usize).clamp(10, 512)
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
    /// grown in batches small enough that their scratch (about 10 bytes per
    /// item per tree) fits. The trees of a batch split their top levels in
    /// shared passes over the vectors, so larger batches read the vectors
    /// fewer times. The vectors themselves are read in place and are not
    /// counted. Unset, the bound is the size of the vectors (at least
    /// 64 MiB): all the trees form one batch at 768 `f32` dimensions, about
    /// 50 at 128.
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

    /// Reports a step (or progress inside one), then polls `cancel`.
    fn step(&self, main: MainStep, sub: Option<SubStep>) -> Result<()> {
        (self.progress)(WriterProgress { main, sub });
        self.check_cancel()
    }

    fn check_cancel(&self) -> Result<()> {
        if (self.cancel)() { Err(Error::BuildCancelled) } else { Ok(()) }
    }

    /// Builds the trees of the index over its current items, inside `wtxn`.
    ///
    /// The first build grows every tree. Later builds update the existing
    /// trees for the items added, changed and deleted since, grow the trees
    /// that `n_trees` asks for in addition, and drop the oldest trees when it
    /// asks for fewer; a new `split_after` regrows the whole forest.
    ///
    /// On error, abort the transaction: the committed index is untouched. A
    /// panic in a build worker or in a callback is returned as
    /// [`Error::BuildPanicked`].
    pub fn build(&mut self, wtxn: &mut RwTxn) -> Result<()> {
        catch_panics(|| self.build_unguarded(wtxn))
    }

    fn build_unguarded(&mut self, wtxn: &mut RwTxn) -> Result<()> {
        let writer = self.writer;
        writer.check_dimensions()?;
        let (db, index, dimensions) = (writer.db, writer.index, writer.dimensions);
        let previous = writer.built_metadata(wtxn)?;
        self.check_cancel()?;
        let seed: u64 = self.rng.random();

        let split_after = self
            .split_after
            .or(previous.as_ref().map(|metadata| metadata.split_after as usize))
            .unwrap_or_else(|| default_split_after(dimensions))
            // Stored metadata could say zero.
            .max(1);
        let (built, roots, context) = match previous {
            Some(metadata) if metadata.split_after as usize == split_after => {
                (metadata.items, metadata.roots, Some(metadata.context.into_owned()))
            }
            _ => (RoaringBitmap::new(), Vec::new(), None),
        };

        self.step(MainStep::RetrievingItems, None)?;
        let plan = self.plan(wtxn, &built, &roots, context, split_after, seed)?;

        self.step(MainStep::RemovingOldTrees, None)?;
        db.delete(wtxn, &Key::version(index))?;
        db.delete(wtxn, &Key::metadata(index))?;
        let mut ids = if plan.fresh {
            store::delete_mode(db, wtxn, index, NodeMode::Tree)?;
            IdAllocator::new(&RoaringBitmap::new(), 0)
        } else {
            let mut freed = plan.dropped;
            for patch in plan.updated.iter().flatten() {
                freed |= &patch.freed;
            }
            for id in &freed {
                db.delete(wtxn, &Key::tree(index, id))?;
            }
            IdAllocator::new(&freed, plan.next_id)
        };
        store::delete_mode(db, wtxn, index, NodeMode::Updated)?;

        let total = (plan.updated.len() + plan.grown.len()) as u64;
        let mut nodes = NodeWriter::new();
        let mut new_roots = Vec::with_capacity(total as usize);
        for (root, patch) in plan.kept.iter().zip(plan.updated) {
            self.step(MainStep::WritingNodes, Some(SubStep { unit: "trees", done: new_roots.len() as u64, total }))?;
            new_roots.push(match patch {
                Some(patch) => write_patch::<D>(db, wtxn, index, patch, &mut ids, &mut nodes)?,
                None => *root,
            });
        }
        for patch in plan.grown {
            self.step(MainStep::WritingNodes, Some(SubStep { unit: "trees", done: new_roots.len() as u64, total }))?;
            new_roots.push(write_patch::<D>(db, wtxn, index, patch, &mut ids, &mut nodes)?);
        }

        self.step(MainStep::WritingMetadata, None)?;
        let metadata = Metadata {
            // Checked by `check_dimensions` above.
            dimensions: dimensions as u32,
            split_after: u32::try_from(split_after).unwrap_or(u32::MAX),
            roots: new_roots,
            distance: Cow::Borrowed(D::NAME),
            context: Cow::Borrowed(bytemuck::bytes_of(&plan.context)),
            items: plan.items,
        };
        let mut bytes = Vec::new();
        metadata.encode_into(&mut bytes);
        db.put(wtxn, &Key::metadata(index), &bytes)?;
        db.put(wtxn, &Key::version(index), &version::encode())?;
        Ok(())
    }

    /// Steps 1 to 3: everything that only reads the transaction.
    fn plan(
        &self,
        wtxn: &RwTxn,
        built: &RoaringBitmap,
        roots: &[u32],
        context: Option<Vec<u8>>,
        split_after: usize,
        seed: u64,
    ) -> Result<Plan<D>> {
        let writer = self.writer;
        let (db, index, dimensions) = (writer.db, writer.index, writer.dimensions);
        let rtxn: &RoTxn = wtxn;
        // Without trees to keep, the forest grows over every stored item and
        // the marks are not needed: every tree is new.
        let fresh = roots.is_empty();
        let everything = match fresh {
            true => Some(FrozenItems::<D>::read(db, rtxn, index, dimensions)?),
            false => None,
        };
        let changes = match everything {
            Some(_) => Changes::none(),
            None => Changes::<D>::read(db, rtxn, index, dimensions, built)?,
        };
        let n_items = everything.as_ref().map_or(changes.items.len(), |frozen| frozen.len() as u64);
        let n_trees = self.n_trees.unwrap_or_else(|| default_n_trees::<D>(n_items, dimensions));
        // Never empty unless `roots` is: `n_trees` is at least one.
        let kept = &roots[roots.len().saturating_sub(n_trees)..];
        let n_grown = n_trees - kept.len();
        info!(index, items = n_items, changed = changes.updated.len(), kept = kept.len(), n_grown, "building");

        let frozen = match (everything, n_grown) {
            (Some(frozen), _) => Some(frozen),
            (None, 0) => None,
            (None, _) => Some(FrozenItems::<D>::read(db, rtxn, index, dimensions)?),
        };
        let context = match (&frozen, context) {
            (Some(frozen), _) if fresh => D::context(frozen.leaves.iter().copied()),
            (_, Some(bytes)) => bytemuck::try_pod_read_unaligned(&bytes)
                .map_err(|_| Error::corrupted(Key::metadata(index), "the build context does not decode"))?,
            (_, None) => return Err(Error::corrupted(Key::metadata(index), "the build context is missing")),
        };
        let params = GrowParams { context, split_after, cancel: &*self.cancel };

        self.step(MainStep::UpdatingTrees, Some(SubStep { unit: "trees", done: 0, total: kept.len() as u64 }))?;
        let node_limit = 2 * (built.len() + changes.inserted.len() as u64) + 1;
        let cx = UpdateContext {
            params: &params,
            changes: &changes,
            db,
            index,
            dimensions,
            tmpdir: writer.tmpdir.as_deref(),
            seed,
            node_limit,
        };
        let mut updated = Vec::with_capacity(kept.len());
        if changes.is_empty() {
            updated.resize_with(kept.len(), || None);
        } else {
            for (batch, roots) in kept.chunks(UPDATE_BATCH).enumerate() {
                let txns = roots.iter().map(|_| wtxn.nested_read_txn()).collect::<heed::Result<Vec<_>>>()?;
                let first = (batch * UPDATE_BATCH) as u64;
                let patches: Vec<TreePatch> = roots
                    .par_iter()
                    .zip(txns)
                    .enumerate()
                    .map(|(i, (&root, rtxn))| update_tree(&cx, &rtxn, root, first + i as u64))
                    .collect::<Result<_>>()?;
                updated.extend(patches.into_iter().map(Some));
                let done = updated.len() as u64;
                self.step(MainStep::UpdatingTrees, Some(SubStep { unit: "trees", done, total: kept.len() as u64 }))?;
            }
        }

        let grown = match &frozen {
            Some(frozen) => self.grow_trees(&params, frozen, seed, kept.len(), n_grown)?,
            None => Vec::new(),
        };
        let mut dropped = RoaringBitmap::new();
        if !fresh {
            for &root in &roots[..roots.len() - kept.len()] {
                dropped.extend(subtree::<D>(db, rtxn, index, root, node_limit)?.1);
            }
        }
        let next_id = store::last_id(db, rtxn, index, NodeMode::Tree)?.map_or(0, |id| u64::from(id) + 1);
        let items = match &frozen {
            Some(frozen) if fresh => RoaringBitmap::from_sorted_iter(frozen.ids.iter().copied())
                .map_err(|_| Error::corrupted(Key::item(index, 0), "item keys out of order"))?,
            _ => changes.items,
        };
        Ok(Plan { fresh, kept: kept.to_vec(), updated, grown, dropped, next_id, items, context })
    }

    /// Grows `n_trees` new trees, numbered from `first`, in parallel.
    fn grow_trees(
        &self,
        params: &GrowParams<'_, D>,
        frozen: &FrozenItems<'_, D>,
        seed: u64,
        first: usize,
        n_trees: usize,
    ) -> Result<Vec<TreePatch>> {
        self.step(MainStep::GrowingTrees, Some(SubStep { unit: "trees", done: 0, total: n_trees as u64 }))?;
        let per_tree = frozen.len().saturating_mul(SCRATCH_PER_ITEM_AND_TREE).max(1);
        let memory = self
            .available_memory
            .unwrap_or_else(|| frozen.len().saturating_mul(frozen.vector_bytes()).max(DEFAULT_SCRATCH_FLOOR));
        let batch = (memory / per_tree).clamp(1, n_trees.max(1));
        let tmpdir = self.writer.tmpdir.as_deref();
        let mut trees = Vec::with_capacity(n_trees);
        let numbers: Vec<u64> = (first as u64..(first + n_trees) as u64).collect();
        for chunk in numbers.chunks(batch) {
            let mut rngs: Vec<_> = chunk.iter().map(|&tree| tree_rng(seed, tree)).collect();
            let mut nodes: Vec<TmpNodes> = chunk.iter().map(|_| TmpNodes::new(tmpdir)).collect();
            let growers = rngs.iter_mut().zip(&mut nodes).map(|(rng, nodes)| Grower::new(params, frozen, rng, nodes));
            let roots = top_levels::grow_trees(params, frozen, growers.collect())?;
            trees.extend(roots.into_iter().zip(nodes).map(|(root, nodes)| TreePatch::new(NodeRef::New(root), nodes)));
            let done = trees.len() as u64;
            self.step(MainStep::GrowingTrees, Some(SubStep { unit: "trees", done, total: n_trees as u64 }))?;
        }
        Ok(trees)
    }
}

/// Runs `f`, turning a panic (in a rayon worker, or in a callback) into
/// [`Error::BuildPanicked`].
fn catch_panics<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let message = match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
            (Some(message), _) => message.to_string(),
            (_, Some(message)) => message.clone(),
            _ => "a panic without a message".to_string(),
        };
        Err(Error::BuildPanicked { message })
    })
}

/// What a build will write, decided while only reading.
struct Plan<D: Distance> {
    /// No tree is kept: the tree range is cleared and ids start at 0.
    fresh: bool,
    /// The roots of the kept trees, oldest first.
    kept: Vec<u32>,
    /// The patch of each kept tree, `None` when no change touched it.
    updated: Vec<Option<TreePatch>>,
    /// The new trees.
    grown: Vec<TreePatch>,
    /// The nodes of the trees dropped.
    dropped: RoaringBitmap,
    /// The first node id never used.
    next_id: u64,
    /// The items after the build.
    items: RoaringBitmap,
    context: D::Context,
}
