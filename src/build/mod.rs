//! [`Builder`]: the options of a build and the ordered steps that run it.
//!
//! 1. Read the items ([`MainStep::RetrievingItems`]): on a fresh build every
//!    item's slot; on a later one the change marks, each with the slot its
//!    item was built in, and the read layer in place. Vectors are read in
//!    their slots, where `add_item` wrote them; a build never writes one.
//! 2. Update the trees that are kept, in parallel ([`MainStep::UpdatingTrees`],
//!    see `update.rs`): each is written anew into its own temporary file,
//!    copying what no change reaches.
//! 3. Grow the trees that are missing (all of them on a fresh build, or
//!    when `split_after` changes) in parallel, each into its own temporary
//!    file ([`MainStep::GrowingTrees`]): their top levels together, in
//!    passes that read each vector once for all of them (see
//!    `top_levels.rs`), the rest depth first, tree by tree. The codes of
//!    the slots are made too (copied from the first tree's run for the
//!    items kept), and the partitions of the runs: on a fresh build the
//!    items clustered (see `clusters.rs`), on a later one the clusters kept
//!    without the items taken out, with each new item in its nearest
//!    clusters. Nothing is written to LMDB until here, and `cancel` is
//!    polled at every node (in the shared levels, at every level and every
//!    1,024 items) and between the clustering's steps.
//! 4. Delete the metadata, the change marks and the trees, partitions and
//!    runs that are replaced ([`MainStep::RemovingOldTrees`]), then write
//!    the directory, the trees and each tree's partitions and run
//!    ([`MainStep::WritingNodes`]).
//! 5. Write the free slots and the metadata last
//!    ([`MainStep::WritingMetadata`]).
//!
//! A build that fails or is cancelled before step 4 has written nothing
//! but the index's header (written with its first item anyway); one that
//! fails during step 4 or 5 leaves the index without metadata in the
//! transaction, which readers refuse with [`Error::NotBuilt`] rather than
//! answer from a half-written forest, and which the next build rebuilds
//! from every item, whose vectors and entries no build touches. Either
//! way, aborting the transaction keeps the last committed index.

mod changes;
mod clusters;
mod frozen;
mod grow;
mod slots;
mod split;
mod top_levels;
mod update;

use std::borrow::Cow;

use heed::{RoTxn, RwTxn};
use rand::Rng;
use rayon::prelude::*;
use roaring::RoaringBitmap;
use tracing::info;

use self::changes::Changes;
pub use self::clusters::partition_count;
use self::clusters::{Centroids, join, members_of};
use self::frozen::FrozenItems;
use self::grow::{GrowParams, Grower, tree_rng};
use self::slots::SlotPlan;
use self::update::{UpdateContext, update_tree};
use crate::codes::{self, Codebook};
use crate::error::Error;
use crate::key::{Key, NodeMode};
use crate::layout::{
    FinishedTree, Layout, MAX_BUCKET, SlotCodes, SlotTable, Spool, Spooled, TreeFile, TreeRun, centroid,
    encode_partitions, open_runs, spool_directory, write_free_slots,
};
use crate::metadata::Metadata;
use crate::progress::{MainStep, SubStep, WriterProgress};
use crate::store;
use crate::vector::VectorCodec;
use crate::writer::Writer;
use crate::{Distance, ItemId, Result};

/// The scratch a tree takes while it grows, per item, in bytes: its item
/// positions and their slots in the shared levels (4 bytes each), the sign
/// of each item's margin and the side each takes in a split (1 byte each).
const SCRATCH_PER_ITEM_AND_TREE: usize = 10;
/// The least scratch a build allows itself when `available_memory` is unset.
const DEFAULT_SCRATCH_FLOOR: usize = 64 << 20;

/// The random stream the codebook's rotation is drawn from (the trees take
/// the streams from 0).
const CODEBOOK_STREAM: u64 = u64::MAX;
/// The random stream the clusters' samples are drawn from.
const CLUSTER_STREAM: u64 = u64::MAX - 1;

/// The most trees an index can have.
pub const MAX_TREES: usize = 4096;

/// The trees of an index with codes, unless [`Builder::n_trees`] says
/// otherwise: each has a run, a copy of the codes in clusters (about 3.4%
/// of the vectors at 384 dimensions), the first with each item in its
/// nearest cluster, the second in a near cluster whose residual is nearly
/// orthogonal to the first (see `clusters.rs`), and queries read the
/// partitions of both. On pypi-minilm
/// (40,000 sentence embeddings) two runs reach recall@10 0.955 scoring 20%
/// of the codes, where three reach 0.948 and one misses the neighbours
/// across its clusters' borders (see README).
pub const DEFAULT_TREES_WITH_CODES: usize = 2;

/// The number of trees a build of an index with the distance `D` grows when
/// [`Builder::n_trees`] is not set.
///
/// An index with codes (the `f32` distances from
/// [`MIN_CODE_DIMENSIONS`](crate::MIN_CODE_DIMENSIONS) dimensions) is
/// searched through its trees' partitions, and grows
/// [`DEFAULT_TREES_WITH_CODES`]. Without codes, queries walk the trees'
/// planes, and more trees are worth their disk: the whole index is sized
/// to fill about 1.25 times the vectors as stored (`v` bytes each:
/// `4 × dimensions` for `f32`s, `dimensions / 8` rounded up to whole 8-byte
/// words for bits). An item takes its slot (its id, header and vector:
/// `4 + h + v` bytes) and its entry (about 30 bytes of pages). A tree
/// stores each item's slot once in a bucket (4 bytes) and one split per
/// bucket (`20 + n` bytes, `n` the normal's size, with the bucket's own 4),
/// and buckets hold about `0.6 × split_after` items on average. Hence
///
/// ```text
/// n_trees = clamp(floor(max(1.25 × v − (34 + h + v), 0.15 × v) / (4 + (24 + n) / (0.6 × split_after))), 10, 512)
/// ```
///
/// with `split_after` from [`default_split_after`], and a single tree when
/// every item fits in one bucket (all trees would be the same). The
/// `0.15 × v` floor serves small vectors (bits), whose ids and entries
/// alone exceed the budget. The snapshot test `default_tree_counts` pins
/// the table; the README has the disk and recall it gives.
pub fn default_n_trees<D: Distance>(n_items: u64, dimensions: usize) -> usize {
    let split_after = default_split_after(dimensions);
    if n_items <= split_after as u64 {
        return 1;
    }
    if codes::space::<D>(dimensions).is_some() {
        return DEFAULT_TREES_WITH_CODES;
    }
    let vector = D::Codec::size(dimensions) as f64;
    let item = 34.0 + size_of::<D::Header>() as f64 + vector;
    let split = 24.0 + D::NormalCodec::size(dimensions) as f64;
    let per_tree = 4.0 + split / (0.6 * split_after as f64);
    let budget = (1.25 * vector - item).max(0.15 * vector);
    ((budget / per_tree).floor() as usize).clamp(10, 512)
}

/// The bucket size a build uses when [`Builder::split_after`] is not set:
/// the number of dimensions, clamped to `[16, 256]`.
pub fn default_split_after(dimensions: usize) -> usize {
    dimensions.clamp(16, 256)
}

/// The options of a build; created by [`Writer::builder`].
///
/// # Examples
///
/// ```no_run
/// # use rand::SeedableRng;
/// # fn build(env: &spinney::heed::Env, writer: &spinney::Writer<spinney::distances::Cosine>) -> spinney::Result<()> {
/// let stop = std::sync::atomic::AtomicBool::new(false);
/// let mut wtxn = env.write_txn()?;
/// writer
///     .builder(&mut rand::rngs::StdRng::seed_from_u64(42))
///     .n_trees(20)
///     .split_after(200)
///     .available_memory(1 << 30)
///     .cancel(|| stop.load(std::sync::atomic::Ordering::Relaxed))
///     .progress(|progress| println!("{:?}", progress.main))
///     .build(&mut wtxn)?;
/// wtxn.commit()?;
/// # Ok(()) }
/// ```
pub struct Builder<'a, D: Distance> {
    writer: &'a Writer<D>,
    /// Every random draw of the build derives from this.
    seed: u64,
    n_trees: Option<usize>,
    split_after: Option<usize>,
    available_memory: Option<usize>,
    cancel: Box<dyn Fn() -> bool + Sync + Send + 'a>,
    progress: Box<dyn Fn(WriterProgress) + Sync + Send + 'a>,
}

impl<'a, D: Distance> Builder<'a, D> {
    pub(crate) fn new(writer: &'a Writer<D>, seed: u64) -> Builder<'a, D> {
        Builder {
            writer,
            seed,
            n_trees: None,
            split_after: None,
            available_memory: None,
            cancel: Box::new(|| false),
            progress: Box::new(|_| ()),
        }
    }

    /// The seed of the build, instead of the draw [`Writer::builder`] made:
    /// the same seed over the same items gives the same bytes, whatever the
    /// number of threads.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use rand::SeedableRng;
    /// # fn build(env: &spinney::heed::Env, writer: &spinney::Writer<spinney::distances::Cosine>) -> spinney::Result<()> {
    /// # let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let mut wtxn = env.write_txn()?;
    /// // The same seed gives the same trees, byte for byte.
    /// writer.builder(&mut rng).seed(42).build(&mut wtxn)?;
    /// wtxn.commit()?;
    /// # Ok(()) }
    /// ```
    pub fn seed(&mut self, seed: u64) -> &mut Self {
        self.seed = seed;
        self
    }

    /// The number of trees. More trees give better recall for the same
    /// search effort, and cost build time and disk. Unset, the count comes
    /// from [`default_n_trees`]. Values are clamped to `1..=MAX_TREES`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use rand::SeedableRng;
    /// # fn build(env: &spinney::heed::Env, writer: &spinney::Writer<spinney::distances::Cosine>) -> spinney::Result<()> {
    /// # let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let mut wtxn = env.write_txn()?;
    /// // More trees than the default: better recall at the same search_k.
    /// writer.builder(&mut rng).n_trees(64).build(&mut wtxn)?;
    /// wtxn.commit()?;
    /// # Ok(()) }
    /// ```
    pub fn n_trees(&mut self, n_trees: usize) -> &mut Self {
        self.n_trees = Some(n_trees.clamp(1, MAX_TREES));
        self
    }

    /// The largest bucket: a node with more items is split. Smaller buckets
    /// make deeper trees, with more split nodes on disk. Unset, it is
    /// [`default_split_after`]. Zero counts as one.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use rand::SeedableRng;
    /// # fn build(env: &spinney::heed::Env, writer: &spinney::Writer<spinney::distances::Cosine>) -> spinney::Result<()> {
    /// # let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let mut wtxn = env.write_txn()?;
    /// writer.builder(&mut rng).split_after(64).build(&mut wtxn)?;
    /// wtxn.commit()?;
    /// # Ok(()) }
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use rand::SeedableRng;
    /// # fn build(env: &spinney::heed::Env, writer: &spinney::Writer<spinney::distances::Cosine>) -> spinney::Result<()> {
    /// # let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let mut wtxn = env.write_txn()?;
    /// // Grow the trees within 512 MiB of scratch.
    /// writer.builder(&mut rng).available_memory(512 << 20).build(&mut wtxn)?;
    /// wtxn.commit()?;
    /// # Ok(()) }
    /// ```
    pub fn available_memory(&mut self, bytes: usize) -> &mut Self {
        self.available_memory = Some(bytes);
        self
    }

    /// A callback polled often during the build; once it returns `true` the
    /// build stops with [`Error::BuildCancelled`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use rand::SeedableRng;
    /// # fn build(env: &spinney::heed::Env, writer: &spinney::Writer<spinney::distances::Cosine>) -> spinney::Result<()> {
    /// # let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let mut wtxn = env.write_txn()?;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// let stop = AtomicBool::new(false); // set by another thread
    /// match writer.builder(&mut rng).cancel(|| stop.load(Ordering::Relaxed)).build(&mut wtxn) {
    ///     // Abort: the index stays as it was committed.
    ///     Err(spinney::Error::BuildCancelled) => return Ok(wtxn.abort()),
    ///     other => other?,
    /// }
    /// wtxn.commit()?;
    /// # Ok(()) }
    /// ```
    pub fn cancel(&mut self, cancel: impl Fn() -> bool + Sync + Send + 'a) -> &mut Self {
        self.cancel = Box::new(cancel);
        self
    }

    /// A callback told of each step of the build, and of progress inside it.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use rand::SeedableRng;
    /// # fn build(env: &spinney::heed::Env, writer: &spinney::Writer<spinney::distances::Cosine>) -> spinney::Result<()> {
    /// # let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let mut wtxn = env.write_txn()?;
    /// writer
    ///     .builder(&mut rng)
    ///     .progress(|progress| match progress.sub {
    ///         Some(sub) => eprintln!("{:?}: {}/{} {}", progress.main, sub.done, sub.total, sub.unit),
    ///         None => eprintln!("{:?}", progress.main),
    ///     })
    ///     .build(&mut wtxn)?;
    /// wtxn.commit()?;
    /// # Ok(()) }
    /// ```
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
    /// The first build grows every tree and, for an index with codes,
    /// clusters the items into its runs' partitions. Later builds update the
    /// existing trees for the items added, changed and deleted since, grow
    /// the trees that `n_trees` asks for in addition, and drop the oldest
    /// trees when it asks for fewer; a new `split_after` regrows the whole
    /// forest. They keep the clusters, new items joining their nearest
    /// ones, unless the number of items has changed so much that the
    /// items are clustered anew (see `partition_count`).
    ///
    /// On error, abort the transaction: the committed index is untouched. A
    /// panic in a build worker or in a callback is returned as
    /// [`Error::BuildPanicked`].
    ///
    /// The vectors are already in their slots (`add_item` wrote them
    /// there): a build reads them and writes only the trees, the
    /// directory, the partitions and runs, and the metadata, so a load and
    /// its first build fit in one transaction at any size the map allows
    /// (a million 384-dimension vectors included).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use rand::SeedableRng;
    /// # fn build(env: &spinney::heed::Env, writer: &spinney::Writer<spinney::distances::Cosine>) -> spinney::Result<()> {
    /// # let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let mut wtxn = env.write_txn()?;
    /// writer.builder(&mut rng).build(&mut wtxn)?;
    /// wtxn.commit()?;
    /// # Ok(()) }
    /// ```
    pub fn build(&mut self, wtxn: &mut RwTxn) -> Result<()> {
        catch_panics(|| self.build_unguarded(wtxn))
    }

    fn build_unguarded(&mut self, wtxn: &mut RwTxn) -> Result<()> {
        let writer = self.writer;
        writer.ensure_header(wtxn)?;
        let previous = store::metadata(writer.db, wtxn, writer.index)?;
        self.check_cancel()?;
        let seed = self.seed;
        let split_after = self
            .split_after
            .or(previous.as_ref().map(|metadata| metadata.split_after as usize))
            .unwrap_or_else(|| default_split_after(writer.dimensions))
            // Stored metadata could say zero, or more than a bucket holds.
            .clamp(1, MAX_BUCKET);

        self.step(MainStep::RetrievingItems, None)?;
        let rtxn: &RoTxn = wtxn;
        let output = match previous {
            Some(built) if built.split_after as usize == split_after && !built.roots.is_empty() => {
                self.plan_update(rtxn, &built, split_after, seed)?
            }
            previous => self.plan_fresh(rtxn, previous.map_or(0, |built| built.n_slots), split_after, seed)?,
        };
        self.write(wtxn, output)
    }

    /// Steps 1 to 3 of a build that grows every tree over every item in
    /// its slot; `at_least` is the number of slots of the last build, if
    /// any.
    fn plan_fresh(&self, rtxn: &RoTxn, at_least: u32, split_after: usize, seed: u64) -> Result<Output> {
        let writer = self.writer;
        let (db, index, dimensions) = (writer.db, writer.index, writer.dimensions);
        let slots = SlotTable::<D>::open(db, rtxn, index, dimensions, at_least)?;
        let mut ids = RoaringBitmap::new();
        let mut live = RoaringBitmap::new();
        let mut directory = Vec::new();
        for entry in store::iter_mode(db, rtxn, index, NodeMode::Item)? {
            let (key, bytes) = entry?;
            let slot = store::decode_slot::<D>(key, bytes)?;
            if slot >= slots.len() || slots.id(slot) != key.id || !live.insert(slot) {
                return Err(Error::corrupted(key, format!("slot {slot} holds another item")));
            }
            ids.push(key.id);
            directory.push(slot);
        }
        let frozen = FrozenItems::of_slots(live.iter(), |slot| Ok(slots.leaf(slot)))?;
        let n_trees = self.n_trees.unwrap_or_else(|| default_n_trees::<D>(frozen.len() as u64, dimensions));
        info!(index, items = frozen.len(), n_trees, "building every tree");
        let context = D::context(frozen.leaves.iter().copied());
        let codebook = codes::space::<D>(dimensions)
            .map(|_| Codebook::of(dimensions, frozen.leaves.iter(), tree_rng(seed, CODEBOOK_STREAM).next_u64()));
        let params = GrowParams { context, split_after, cancel: &*self.cancel };
        self.step(MainStep::UpdatingTrees, Some(SubStep { unit: "trees", done: 0, total: 0 }))?;
        let trees = self.grow_trees(&params, &frozen, seed, 0, n_trees)?;
        let runs = match &codebook {
            Some(codebook) => {
                let mut codes = SlotCodes::new(dimensions, slots.len());
                codes.encode(codebook, &slots, &live);
                Some(Runs { codes, partitions: self.cluster(&slots, &frozen.slots, n_trees, seed)? })
            }
            None => None,
        };
        let mut free = RoaringBitmap::new();
        free.insert_range(0..slots.len());
        free -= &live;
        let metadata = Metadata {
            split_after: split_after as u32,
            roots: trees.iter().map(|tree| tree.root).collect(),
            n_slots: slots.len(),
            context: Cow::Owned(bytemuck::bytes_of(&context).to_vec()),
            items: ids,
            free,
        };
        let directory = self.spool_directory(directory)?;
        Ok(Output { fresh: true, trees: Some(trees), directory: Some(directory), metadata, codebook, runs })
    }

    /// Steps 1 to 3 of a build over a built index: the kept trees updated,
    /// the missing ones grown, the slots written since taken in.
    fn plan_update(&self, rtxn: &RoTxn, built: &Metadata, split_after: usize, seed: u64) -> Result<Output> {
        let writer = self.writer;
        let (db, index, dimensions) = (writer.db, writer.index, writer.dimensions);
        let layout = Layout::<D>::open(db, rtxn, index, dimensions, built)?;
        let changes = Changes::<D>::read(db, rtxn, index, &layout.slots, built)?;
        let n_trees = self.n_trees.unwrap_or_else(|| default_n_trees::<D>(changes.items.len(), dimensions));
        let kept = built.roots.len().min(n_trees);
        let n_grown = n_trees - kept;
        info!(index, items = changes.items.len(), kept, n_grown, "updating");
        let context: D::Context = bytemuck::try_pod_read_unaligned(&built.context)
            .map_err(|_| Error::corrupted(Key::metadata(index), "the build context does not decode"))?;
        let mut metadata = built.to_static();
        if changes.is_empty() && n_grown == 0 && kept == built.roots.len() {
            return Ok(Output { fresh: false, trees: None, directory: None, metadata, codebook: None, runs: None });
        }

        let codebook = store::built_codebook::<D>(db, rtxn, index, dimensions)?;
        let plan = SlotPlan::update(index, &layout.slots, built, &changes);
        let params = GrowParams { context, split_after, cancel: &*self.cancel };
        let cx = UpdateContext {
            params: &params,
            plan: &plan,
            removed: &changes.removed,
            inserted: plan.assigned.iter().map(|&(slot, _, leaf)| (slot, leaf)).collect(),
            index,
            normal: layout.normal,
            tmpdir: writer.tmpdir.as_deref(),
        };
        // The oldest trees are dropped when fewer are asked for.
        let old = &layout.trees[built.roots.len() - kept..];
        let total = old.len() as u64;
        self.step(MainStep::UpdatingTrees, Some(SubStep { unit: "trees", done: 0, total }))?;
        let mut trees: Vec<FinishedTree> = old
            .par_iter()
            .enumerate()
            .map(|(tree, view)| {
                update_tree(&cx, view, built.roots.len() - kept + tree, &mut tree_rng(seed, tree as u64))
            })
            .collect::<Result<_>>()?;
        self.step(MainStep::UpdatingTrees, Some(SubStep { unit: "trees", done: total, total }))?;
        if n_grown > 0 {
            let frozen = FrozenItems::of_slots(plan.live(), |slot| plan.leaf(slot))?;
            trees.extend(self.grow_trees(&params, &frozen, seed, kept, n_grown)?);
        }
        let runs = match &codebook {
            Some(codebook) => {
                let old = open_runs(db, rtxn, index, dimensions, built.roots.len())?;
                let codes = self.slot_codes(codebook, old.as_deref(), &layout.slots, &plan, &changes.removed);
                let partitions =
                    self.updated_partitions(old.as_deref(), &layout.slots, &plan, &changes, n_trees, seed)?;
                Some(Runs { codes, partitions })
            }
            None => None,
        };
        metadata.roots = trees.iter().map(|tree| tree.root).collect();
        metadata.n_slots = plan.n_slots;
        metadata.free = plan.free.clone();
        metadata.items = changes.items;
        let entries = plan.directory();
        let directory = self.spool_directory(merged_directory(built, &layout, &metadata.items, &entries))?;
        Ok(Output { fresh: false, trees: Some(trees), directory: Some(directory), metadata, codebook: None, runs })
    }

    /// The members of every partition of every run, clustered anew.
    fn cluster(&self, slots: &SlotTable<'_, D>, live: &[u32], runs: usize, seed: u64) -> Result<Vec<Vec<Vec<u32>>>> {
        let mut rng = tree_rng(seed, CLUSTER_STREAM);
        clusters::cluster(slots, live, runs, &mut rng, &*self.cancel).ok_or(Error::BuildCancelled)
    }

    /// The members of every partition of every run after an update with
    /// `changes`: the old runs' clusters without the slots taken out, the
    /// new slots each in its nearest cluster and its spilled ones; all of
    /// them clustered anew when the runs are not the old ones (another
    /// number of runs, or an index whose items grew or shrank so much that
    /// its clusters number less than half or more than twice what a fresh
    /// build would make).
    fn updated_partitions(
        &self,
        runs: Option<&[TreeRun<'_>]>,
        slots: &SlotTable<'_, D>,
        plan: &SlotPlan<'_, '_, D>,
        changes: &Changes<'_, D>,
        n_trees: usize,
        seed: u64,
    ) -> Result<Vec<Vec<Vec<u32>>>> {
        let target = partition_count(changes.items.len());
        let old = runs.filter(|runs| {
            let k = runs.first().map_or(0, |run| run.partitions.len());
            let alike = runs.iter().all(|run| run.partitions.len() == k);
            alike && runs.len() == n_trees && 2 * k >= target && k <= 2 * target
        });
        let Some(old) = old else {
            let live: Vec<u32> = plan.live().collect();
            return self.cluster(slots, &live, n_trees, seed);
        };
        let kept = |members: Vec<u32>| -> Vec<u32> {
            members.into_iter().filter(|&slot| !changes.removed.contains(slot)).collect()
        };
        let mut partitions: Vec<Vec<Vec<u32>>> =
            old.iter().map(|run| run.members().into_iter().map(kept).collect()).collect();
        let dimensions = slots.geometry().dimensions;
        let values = partitions[0]
            .par_iter()
            .map_init(Vec::new, |point, members| centroid(slots, members, point))
            .flatten_iter()
            .collect();
        let mut centroids = Centroids::new(dimensions, values);
        let k = centroids.len();
        for (c, members) in partitions[0].iter().enumerate() {
            if members.is_empty() {
                centroids.exclude(c);
            }
        }
        let inserted: Vec<u32> = plan.assigned.iter().map(|&(slot, ..)| slot).collect();
        let choices = join(slots, &inserted, &centroids, n_trees, &mut tree_rng(seed, CLUSTER_STREAM));
        for (run, new) in partitions.iter_mut().zip(members_of(&inserted, &choices, n_trees, k)) {
            run.iter_mut().zip(new).for_each(|(members, new)| members.extend(new));
        }
        Ok(partitions)
    }

    /// The codes of the slots after an update of `built`: copied from the
    /// first tree's run for the slots kept, encoded for those `plan` takes
    /// in.
    fn slot_codes(
        &self,
        codebook: &Codebook,
        runs: Option<&[TreeRun<'_>]>,
        slots: &SlotTable<'_, D>,
        plan: &SlotPlan<'_, '_, D>,
        removed: &RoaringBitmap,
    ) -> SlotCodes {
        let mut codes = SlotCodes::new(self.writer.dimensions, plan.n_slots);
        let mut encoded: RoaringBitmap = plan.assigned.iter().map(|&(slot, ..)| slot).collect();
        match runs {
            Some([run, ..]) => codes.copy_run(run, |slot| !removed.contains(slot)),
            // An index emptied by `clear`, or one without trees: every code anew.
            _ => encoded.extend(plan.live()),
        }
        codes.encode(codebook, slots, &encoded);
        codes
    }

    /// Spools a directory whose slots, in id order, are `slots`.
    fn spool_directory(&self, slots: impl IntoIterator<Item = u32>) -> Result<Spooled> {
        let mut spool = Spool::new(self.writer.tmpdir.as_deref());
        spool_directory(slots, &mut spool)?;
        spool.finish()
    }

    /// Steps 4 and 5: everything that writes.
    fn write(&self, wtxn: &mut RwTxn, output: Output) -> Result<()> {
        let (db, index) = (self.writer.db, self.writer.index);
        let Output { fresh, trees, directory, metadata, codebook, runs } = output;
        self.step(MainStep::RemovingOldTrees, None)?;
        db.delete(wtxn, &Key::metadata(index))?;
        store::delete_mode(db, wtxn, index, NodeMode::Updated)?;
        // A fresh build has trees, and replaces the codebook too.
        if trees.is_some() {
            store::delete_read_layer(db, wtxn, index)?;
        }
        if fresh {
            db.delete(wtxn, &Key::codebook(index))?;
            if let Some(codebook) = codebook {
                let mut bytes = Vec::new();
                codebook.encode_into(&mut bytes);
                db.put(wtxn, &Key::codebook(index), &bytes)?;
            }
        }

        // The vectors and the items' entries stay as they are: a build
        // cancelled here and committed anyway leaves an unbuilt index with
        // every item, which the next build rebuilds.
        let trees = trees.unwrap_or_default();
        let total = trees.len() as u64;
        self.step(MainStep::WritingNodes, Some(SubStep { unit: "trees", done: 0, total }))?;
        if let Some(directory) = directory {
            directory.write(db, wtxn, |chunk| Key::directory(index, chunk as u32))?;
        }
        for (tree, finished) in trees.into_iter().enumerate() {
            self.step(MainStep::WritingNodes, Some(SubStep { unit: "trees", done: tree as u64, total }))?;
            finished.write(db, wtxn, index, tree as u32)?;
        }
        if let Some(runs) = runs.filter(|_| total > 0) {
            self.write_runs(wtxn, &metadata, &runs)?;
        }

        self.step(MainStep::WritingMetadata, None)?;
        write_free_slots(db, wtxn, index, &metadata.free)?;
        let mut bytes = Vec::new();
        metadata.encode_into(&mut bytes);
        db.put(wtxn, &Key::metadata(index), &bytes)?;
        Ok(())
    }

    /// Writes the partitions and the run of every tree, in `wtxn`, whose
    /// metadata will be `metadata`, one run at a time, so that one run is
    /// encoded in memory.
    fn write_runs(&self, wtxn: &mut RwTxn, metadata: &Metadata, runs: &Runs) -> Result<()> {
        let (db, index, dimensions) = (self.writer.db, self.writer.index, self.writer.dimensions);
        let Some(codebook) = store::built_codebook::<D>(db, wtxn, index, dimensions)? else { return Ok(()) };
        let total = runs.partitions.len() as u64;
        for (tree, members) in runs.partitions.iter().enumerate() {
            self.step(MainStep::WritingNodes, Some(SubStep { unit: "runs", done: tree as u64, total }))?;
            // The slots are looked up again for each run: the writes of the
            // one before end their borrow of the transaction.
            let (partitions, run) = {
                let rtxn: &RoTxn = wtxn;
                let slots = SlotTable::<D>::open(db, rtxn, index, dimensions, metadata.n_slots)?;
                encode_partitions(members, &slots, &runs.codes, &codebook)
            };
            db.put(wtxn, &Key::partitions(index, tree as u32), &partitions)?;
            for (chunk, bytes) in run.iter().enumerate() {
                db.put(wtxn, &Key::run(index, tree as u32, chunk as u32), bytes)?;
            }
        }
        Ok(())
    }

    /// Grows `n_trees` new trees, numbered from `first`, in parallel.
    fn grow_trees(
        &self,
        params: &GrowParams<'_, D>,
        frozen: &FrozenItems<'_, D>,
        seed: u64,
        first: usize,
        n_trees: usize,
    ) -> Result<Vec<FinishedTree>> {
        self.step(MainStep::GrowingTrees, Some(SubStep { unit: "trees", done: 0, total: n_trees as u64 }))?;
        let per_tree = frozen.len().saturating_mul(SCRATCH_PER_ITEM_AND_TREE).max(1);
        let memory = self
            .available_memory
            .unwrap_or_else(|| frozen.len().saturating_mul(frozen.vector_bytes()).max(DEFAULT_SCRATCH_FLOOR));
        let batch = (memory / per_tree).clamp(1, n_trees.max(1));
        let tmpdir = self.writer.tmpdir.as_deref();
        let normal = D::NormalCodec::size(self.writer.dimensions);
        let mut trees = Vec::with_capacity(n_trees);
        let numbers: Vec<u64> = (first as u64..(first + n_trees) as u64).collect();
        for chunk in numbers.chunks(batch) {
            let mut rngs: Vec<_> = chunk.iter().map(|&tree| tree_rng(seed, tree)).collect();
            let mut files: Vec<TreeFile> = chunk.iter().map(|_| TreeFile::new(tmpdir, normal)).collect();
            let growers = rngs.iter_mut().zip(&mut files).map(|(rng, file)| Grower::new(params, frozen, rng, file));
            let roots = top_levels::grow_trees(params, frozen, growers.collect())?;
            for (root, file) in roots.into_iter().zip(files) {
                trees.push(file.finish(root)?);
            }
            let done = trees.len() as u64;
            self.step(MainStep::GrowingTrees, Some(SubStep { unit: "trees", done, total: n_trees as u64 }))?;
        }
        Ok(trees)
    }
}

/// The slots of `items`, in id order, after a build over `built`: the slots
/// `assigned` (sorted by id) gave, or those the directory of `layout` kept.
fn merged_directory<'a, D: Distance>(
    built: &'a Metadata,
    layout: &'a Layout<'_, D>,
    items: &'a RoaringBitmap,
    assigned: &'a [(ItemId, u32)],
) -> impl Iterator<Item = u32> + 'a {
    let mut assigned = assigned.iter().peekable();
    let mut old = built.items.iter().enumerate().peekable();
    items.iter().map(move |item| {
        if let Some(&&(_, slot)) = assigned.peek().filter(|&&&(id, _)| id == item) {
            assigned.next();
            return slot;
        }
        while old.next_if(|&(_, id)| id < item).is_some() {}
        // Not given a slot, so built and kept: it is in the old bitmap.
        old.next().map_or(u32::MAX, |(rank, _)| layout.directory.slot(rank as u64))
    })
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
struct Output {
    /// The whole read layer is replaced, codebook included.
    fresh: bool,
    /// Every tree, in order; `None` when the trees stay as they are.
    trees: Option<Vec<FinishedTree>>,
    /// The directory of every item's slot; `None` when it stays as it is.
    directory: Option<Spooled>,
    /// The metadata after the build.
    metadata: Metadata<'static>,
    /// The codebook a fresh build drew.
    codebook: Option<Codebook>,
    /// The runs, for the distances with codes.
    runs: Option<Runs>,
}

/// What the runs of a build hold.
struct Runs {
    /// The code of every slot the runs hold.
    codes: SlotCodes,
    /// The slots of each partition of each run.
    partitions: Vec<Vec<Vec<u32>>>,
}
