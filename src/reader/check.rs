//! Walking every tree and every slot: [`Reader::stats`] and [`Reader::check`].

use heed::RoTxn;
use roaring::RoaringBitmap;

use super::Reader;
use crate::codes::{self, CodeWriter, Codes};
use crate::error::Error;
use crate::key::{Key, NodeMode};
use crate::layout::{NodeView, PADDING, RunChunk, centroid, node_key, reused_count};
use crate::store;
use crate::vector::VectorCodec;
use crate::{Distance, Result};

/// The shape of one tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeStats {
    /// The longest path from the root to a bucket, in edges.
    pub depth: usize,
    /// The number of split nodes.
    pub split_nodes: usize,
    /// How many of the splits were random (no plane separated the items).
    pub random_splits: usize,
    /// The number of buckets.
    pub buckets: usize,
    /// The number of items in the largest bucket.
    pub largest_bucket: u64,
    /// The bytes of the tree's nodes.
    pub bytes: u64,
}

/// The shape of every tree of an index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// One entry per tree, in tree order.
    pub trees: Vec<TreeStats>,
}

impl<D: Distance> Reader<'_, D> {
    /// Walks tree `tree` depth first from its root, calling `visit` with each
    /// node's address, depth and content. A node is visited at most once
    /// per unit of the tree's bytes, so that a corrupted tree (one whose
    /// nodes share children) gives an error instead of a long walk.
    fn walk(&self, tree: usize, mut visit: impl FnMut(u32, usize, &NodeView<'_>) -> Result<()>) -> Result<()> {
        let view = &self.layout.trees[tree];
        let limit = view.units();
        let mut stack = vec![(view.root, 0usize)];
        let mut visited = 0u64;
        while let Some((addr, depth)) = stack.pop() {
            visited += 1;
            if visited > limit {
                return Err(Error::corrupted(node_key(self.index, tree, addr), "the tree's nodes share children"));
            }
            let node = self.layout.node(self.index, tree, addr)?;
            visit(addr, depth, &node)?;
            if let Some([left, right]) = node.children() {
                stack.push((right, depth + 1));
                stack.push((left, depth + 1));
            }
        }
        Ok(())
    }

    /// The depth, splits, buckets and size of each tree.
    pub fn stats(&self, _rtxn: &RoTxn) -> Result<Stats> {
        let mut trees = Vec::with_capacity(self.n_trees());
        for tree in 0..self.n_trees() {
            let mut stats = TreeStats { bytes: self.layout.trees[tree].units() * 4, ..TreeStats::default() };
            self.walk(tree, |_, depth, node| {
                stats.depth = stats.depth.max(depth);
                match node {
                    NodeView::Split { .. } => stats.split_nodes += 1,
                    NodeView::Random { .. } => {
                        stats.split_nodes += 1;
                        stats.random_splits += 1;
                    }
                    NodeView::Bucket(slots) => {
                        stats.buckets += 1;
                        stats.largest_bucket = stats.largest_bucket.max(slots.len() as u64);
                    }
                }
                Ok(())
            })?;
            trees.push(stats);
        }
        Ok(Stats { trees })
    }

    /// Verifies the partitions and runs of every tree, for an index with
    /// codes: the partitions lie one after the other, each chunk holding
    /// its partitions' items then padding to a whole block, the run holds
    /// every item of `live` once with the code of its vector, and each
    /// centroid's code is the code of its partition's mean.
    fn check_runs(&self, live: &RoaringBitmap) -> Result<()> {
        let index = self.index;
        let (Some(codebook), slots) = (self.codebook.as_ref(), &self.layout.slots) else { return Ok(()) };
        let runs = match self.runs.as_deref() {
            Some(runs) => runs,
            // An index emptied by `clear` keeps its codebook and no tree.
            None if self.n_trees() == 0 => return Ok(()),
            None => return Err(Error::corrupted(Key::partitions(index, 0), "an index with codes has no partitions")),
        };
        let mut writer = CodeWriter::new(codebook);
        let (mut point, mut section, mut members) = (Vec::new(), Vec::new(), Vec::new());
        for (tree, run) in runs.iter().enumerate() {
            let key = Key::partitions(index, tree as u32);
            let corrupted = |reason: String| Err(Error::corrupted(key, reason));
            let mut in_run = RoaringBitmap::new();
            let mut next = (0u32, 0u32);
            for i in 0..run.partitions.len() {
                let [chunk, first, lanes] = run.partitions.place(i);
                // In the same chunk right after the one before, or first in
                // the next chunk once that one is closed.
                let follows = (chunk, first) == next
                    || (chunk == next.0 + 1 && first == 0 && closes(&run.chunks[next.0 as usize], next.1));
                if !follows {
                    return corrupted(format!("partition {i} does not follow the one before it"));
                }
                next = (chunk, first + lanes);
                let run_chunk = &run.chunks[chunk as usize];
                members.clear();
                for lane in first as usize..(first + lanes) as usize {
                    let slot = run_chunk.slot(lane);
                    if !live.contains(slot) || !in_run.insert(slot) {
                        return corrupted(format!("partition {i} holds slot {slot}: no item, or twice in the run"));
                    }
                    // The code of the vector, written alone, as the build wrote it.
                    let leaf = slots.leaf(slot);
                    let expected =
                        code_alone(&mut writer, &mut section, self.dimensions, |w, s| w.write(&leaf, s, 1, 0));
                    if expected != Some(run_chunk.codes().code(lane)) {
                        return corrupted(format!("partition {i} holds another code than slot {slot}'s vector's"));
                    }
                    members.push(slot);
                }
                let mean = centroid(slots, &members, &mut point);
                let expected =
                    code_alone(&mut writer, &mut section, self.dimensions, |w, s| w.write_vector(&mean, s, 1, 0));
                if expected != Some(run.partitions.codes().code(i)) {
                    return corrupted(format!("the centroid code of partition {i} is not its items' mean's"));
                }
            }
            if run.chunks.last().is_some_and(|last| next.0 as usize != run.chunks.len() - 1 || !closes(last, next.1)) {
                return corrupted("the partitions leave lanes of the last run chunk unused".into());
            }
            if &in_run != live {
                let missing = live - &in_run;
                return corrupted(format!(
                    "the run misses {} items, among them slot {:?}",
                    missing.len(),
                    missing.min()
                ));
            }
        }
        Ok(())
    }

    /// Verifies the record of the free slots new vectors take: the free
    /// slots of the build, ascending, and a count of those taken no larger.
    fn check_free_slots(&self, rtxn: &RoTxn) -> Result<()> {
        let (free_key, reused_key) = (Key::free_slots(self.index), Key::reused(self.index));
        let listed = store::get(self.db, rtxn, free_key)?.unwrap_or_default();
        let expected: Vec<u8> = self.metadata.free.iter().flat_map(u32::to_le_bytes).collect();
        if listed != expected {
            return Err(Error::corrupted(free_key, "the free slots differ from the build's"));
        }
        if reused_count(self.db, rtxn, self.index)? as usize > listed.len() / 4 {
            return Err(Error::corrupted(reused_key, "more free slots taken than the build left"));
        }
        Ok(())
    }

    /// Verifies the whole index and returns the first problem found.
    ///
    /// The trees: every node decodes, no node is reached twice or never,
    /// each tree holds every item of the build exactly once, in buckets of
    /// at most `split_after`. The slots: each holds a distinct item of the
    /// build, with a vector as the codec writes it; the runs hold the code
    /// of each vector; the directory and each built item's entry name its
    /// slot; the free slots are listed for new vectors as the build left
    /// them. The write layer: every change mark agrees with the build, every
    /// item changed since is in a slot written since that holds it, and no
    /// stray entry remains.
    pub fn check(&self, rtxn: &RoTxn) -> Result<()> {
        let metadata = &self.metadata;
        let slots = &self.layout.slots;
        let index = self.index;
        let n_slots = metadata.n_slots;
        if let Some(free) = metadata.free.max().filter(|&free| free >= n_slots) {
            return Err(Error::corrupted(Key::metadata(index), format!("free slot {free} of {n_slots}")));
        }
        let mut live = RoaringBitmap::new();
        live.insert_range(0..n_slots);
        live -= &metadata.free;
        self.check_free_slots(rtxn)?;

        for tree in 0..self.n_trees() {
            let mut in_tree = RoaringBitmap::new();
            let mut reached = 0u64;
            self.walk(tree, |addr, _, node| {
                reached += 1;
                let NodeView::Bucket(bucket) = node else { return Ok(()) };
                let key = node_key(index, tree, addr);
                if bucket.len() > metadata.split_after.max(1) as usize {
                    let reason =
                        format!("a bucket of {} items, over split_after {}", bucket.len(), metadata.split_after);
                    return Err(Error::corrupted(key, reason));
                }
                for slot in bucket.iter() {
                    if !live.contains(slot) {
                        return Err(Error::corrupted(
                            key,
                            format!("the bucket holds slot {slot}, which holds no item"),
                        ));
                    }
                    if !in_tree.insert(slot) {
                        return Err(Error::corrupted(key, format!("slot {slot} is in two buckets of one tree")));
                    }
                }
                Ok(())
            })?;
            let nodes = self.layout.trees[tree].nodes(self.layout.normal).count() as u64;
            if nodes != reached {
                let reason = format!("the tree stores {nodes} nodes, its root reaches {reached}");
                return Err(Error::corrupted(node_key(index, tree, 0), reason));
            }
            if in_tree != live {
                let missing = &live - &in_tree;
                let reason = format!("the tree misses {} slots, among them {:?}", missing.len(), missing.min());
                return Err(Error::corrupted(node_key(index, tree, 0), reason));
            }
        }

        let mut ids = RoaringBitmap::new();
        for slot in &live {
            let id = slots.id(slot);
            let key = Key::slots(index, slots.geometry().locate(slot).0);
            if !metadata.items.contains(id) || !ids.insert(id) {
                return Err(Error::corrupted(key, format!("slot {slot} holds item {id}, not built or in two slots")));
            }
            let leaf = slots.leaf(slot);
            if !D::Codec::is_canonical(leaf.vector, self.dimensions) {
                return Err(Error::corrupted(key, format!("the vector of slot {slot} has padding bits set")));
            }
        }
        if ids != metadata.items {
            return Err(Error::corrupted(Key::metadata(index), "the build holds items no slot holds"));
        }
        self.check_runs(&live)?;
        for (rank, item) in metadata.items.iter().enumerate() {
            let slot = self.layout.directory.slot(rank as u64);
            if !live.contains(slot) || slots.id(slot) != item {
                let reason = format!("the directory puts item {item} in slot {slot}, which does not hold it");
                return Err(Error::corrupted(Key::directory(index, 0), reason));
            }
        }

        // The write layer.
        let mut marked = RoaringBitmap::new();
        for mark in store::marks(self.db, rtxn, index)? {
            let (item, slot) = mark?;
            marked.insert(item);
            let agrees = match slot {
                Some(slot) => live.contains(slot) && slots.id(slot) == item,
                None => !metadata.items.contains(item),
            };
            if !agrees {
                return Err(Error::corrupted(Key::updated(index, item), "the mark disagrees with the build"));
            }
        }
        let mut entries = RoaringBitmap::new();
        for entry in store::iter_mode(self.db, rtxn, index, NodeMode::Item)? {
            let (key, bytes) = entry?;
            entries.insert(key.id);
            let slot = store::decode_slot::<D>(key, bytes)?;
            // A built item in its slot, or a changed one in a slot written
            // since the build.
            let agrees =
                live.contains(slot) || marked.contains(key.id) && (slot >= n_slots || metadata.free.contains(slot));
            if !agrees || slot >= slots.len() || slots.id(slot) != key.id {
                return Err(Error::corrupted(key, format!("the item's slot {slot} does not hold it")));
            }
            let leaf = slots.leaf(slot);
            if !D::Codec::is_canonical(leaf.vector, self.dimensions) {
                return Err(Error::corrupted(key, format!("the vector of slot {slot} has padding bits set")));
            }
        }
        if let Some(missing) = (&metadata.items - &entries - &marked).min() {
            return Err(Error::corrupted(Key::item(index, missing), "a built item has no entry and no mark"));
        }
        Ok(())
    }
}

/// The code `write` writes as the only slot of `section` (cleared and
/// sized for one slot of `dimensions`), with its factors.
fn code_alone(
    writer: &mut CodeWriter<'_>,
    section: &mut Vec<u8>,
    dimensions: usize,
    write: impl FnOnce(&mut CodeWriter<'_>, &mut [u8]),
) -> Option<(Vec<u8>, [f32; 2])> {
    section.clear();
    section.resize(codes::section_size(dimensions, 1), 0);
    write(writer, section);
    Codes::new(section, dimensions, 1).map(|alone| alone.code(0))
}

/// Whether a run chunk whose partitions end at lane `end` holds padding
/// after it, and only to the end of that block.
fn closes(chunk: &RunChunk<'_>, end: u32) -> bool {
    let end = end as usize;
    end.div_ceil(codes::BLOCK) * codes::BLOCK == chunk.lanes()
        && (end..chunk.lanes()).all(|lane| chunk.slot(lane) == PADDING)
}
