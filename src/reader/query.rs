//! [`QueryBuilder`]: nearest-neighbour search over the forest.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::num::NonZeroUsize;

use heed::RoTxn;
use roaring::RoaringBitmap;

use super::Reader;
use crate::error::Error;
use crate::key::Key;
use crate::node::Node;
use crate::store;
use crate::writer::check_query;
use crate::{Distance, ItemId, Result};

/// With a filter of at most this many items, every candidate is scored
/// exactly instead of searching the trees.
pub const DEFAULT_EXACT_BELOW_COUNT: u64 = 2_000;
/// With a filter of at most this share of the index, every candidate is
/// scored exactly instead of searching the trees.
pub const DEFAULT_EXACT_BELOW_RATIO: f64 = 0.01;

/// A nearest-neighbour query; created by [`Reader::nns`].
///
/// The search walks all the trees at once, always descending next into the
/// node whose plane the query is nearest to the right side of, and gathers
/// the items of the buckets it reaches until it holds `search_k` distinct
/// candidates. Those are then ranked by their exact distance.
#[derive(Debug, Clone)]
pub struct QueryBuilder<'r, 't, D: Distance> {
    reader: &'r Reader<'t, D>,
    count: usize,
    search_k: Option<NonZeroUsize>,
    oversampling: NonZeroUsize,
    candidates: Option<&'r RoaringBitmap>,
    exact_below_count: u64,
    exact_below_ratio: f64,
}

/// Hashes item ids by one multiplication (Fibonacci hashing): ids are
/// integers, and the set is private to one query.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, id: u32) {
        self.0 = u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A node to visit, ordered by how near the query is to its side of the
/// planes above it (larger first).
#[derive(Debug, PartialEq)]
struct Pending {
    priority: f32,
    node: u32,
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority.total_cmp(&other.priority).then(other.node.cmp(&self.node))
    }
}

impl<'r, 't, D: Distance> QueryBuilder<'r, 't, D> {
    pub(crate) fn new(reader: &'r Reader<'t, D>, count: usize) -> QueryBuilder<'r, 't, D> {
        QueryBuilder {
            reader,
            count,
            search_k: None,
            oversampling: NonZeroUsize::new(D::DEFAULT_OVERSAMPLING).unwrap_or(NonZeroUsize::MIN),
            candidates: None,
            exact_below_count: DEFAULT_EXACT_BELOW_COUNT,
            exact_below_ratio: DEFAULT_EXACT_BELOW_RATIO,
        }
    }

    /// How many distinct candidates to gather from the trees before ranking
    /// them. More means better recall and slower queries; at least the number
    /// of items, the answer is exact. Unset, it is
    /// `count × n_trees × oversampling`.
    pub fn search_k(&mut self, search_k: NonZeroUsize) -> &mut Self {
        self.search_k = Some(search_k);
        self
    }

    /// Multiplies the default `search_k`. It has no effect when `search_k`
    /// is set. Defaults to [`Distance::DEFAULT_OVERSAMPLING`]: 1 for the
    /// `f32` distances, 4 for the distances over bits, which compare
    /// candidates faster.
    pub fn oversampling(&mut self, oversampling: NonZeroUsize) -> &mut Self {
        self.oversampling = oversampling;
        self
    }

    /// Only return items of `candidates`. Items not in the index are ignored.
    ///
    /// When the filter keeps few items (see [`QueryBuilder::exact_below`]),
    /// every one of them is scored exactly; otherwise the trees are searched
    /// and only the filtered items of each bucket count toward `search_k`.
    pub fn candidates(&mut self, candidates: &'r RoaringBitmap) -> &mut Self {
        self.candidates = Some(candidates);
        self
    }

    /// Score every candidate exactly when the filter keeps at most `count`
    /// items, or at most `ratio` of the index. Defaults:
    /// [`DEFAULT_EXACT_BELOW_COUNT`] and [`DEFAULT_EXACT_BELOW_RATIO`].
    pub fn exact_below(&mut self, count: u64, ratio: f64) -> &mut Self {
        self.exact_below_count = count;
        self.exact_below_ratio = ratio;
        self
    }

    /// The `count` nearest items to `vector`, nearest first, with their
    /// distances.
    pub fn by_vector(&self, rtxn: &RoTxn, vector: &[f32]) -> Result<Vec<(ItemId, f32)>> {
        check_query(vector, self.reader.dimensions)?;
        self.search(rtxn, D::query(vector))
    }

    /// The `count` nearest items to the vector of `item` (itself included),
    /// or `None` when `item` is not in the index.
    pub fn by_item(&self, rtxn: &RoTxn, item: ItemId) -> Result<Option<Vec<(ItemId, f32)>>> {
        let reader = self.reader;
        if !reader.visible.contains(item) {
            return Ok(None);
        }
        match store::leaf::<D>(reader.db, rtxn, reader.index, item, reader.dimensions)? {
            Some(leaf) => self.search(rtxn, D::item_query(&leaf, reader.dimensions)).map(Some),
            None => Err(Error::corrupted(Key::item(reader.index, item), "an item of the trees has no vector")),
        }
    }

    fn search(&self, rtxn: &RoTxn, query: D::Query) -> Result<Vec<(ItemId, f32)>> {
        let reader = self.reader;
        if self.count == 0 || reader.is_empty() {
            return Ok(Vec::new());
        }
        // Buckets may hold items deleted since the last build: with any
        // pending deletion, the visible items filter every bucket.
        let filter: Option<Cow<'_, RoaringBitmap>> = match self.candidates {
            Some(candidates) => Some(Cow::Owned(candidates & &reader.visible)),
            None if reader.visible.len() != reader.metadata.items.len() => Some(Cow::Borrowed(&reader.visible)),
            None => None,
        };
        if let Some(filter) = &filter {
            let exact_below = self.exact_below_count.max((self.exact_below_ratio * reader.n_items() as f64) as u64);
            if filter.len() <= exact_below {
                return self.rank(rtxn, &query, filter.iter());
            }
        }
        let search_k = match self.search_k {
            Some(search_k) => search_k.get(),
            None => self.count.saturating_mul(reader.n_trees()).saturating_mul(self.oversampling.get()),
        } as u64;

        let query_leaf = D::query_leaf(&query);
        let mut queue: BinaryHeap<Pending> =
            reader.metadata.roots.iter().map(|&node| Pending { priority: f32::INFINITY, node }).collect();
        // Distinct candidates: a hash set rather than bitmap unions, whose
        // cost grows with the candidates already gathered at every bucket.
        let mut seen: HashSet<ItemId, BuildHasherDefault<IdHasher>> = HashSet::default();
        let mut gathered: Vec<ItemId> = Vec::new();
        let mut visits = 0u64;
        while (gathered.len() as u64) < search_k {
            let Some(Pending { priority, node }) = queue.pop() else { break };
            visits += 1;
            if visits > reader.max_nodes() {
                return Err(Error::corrupted(
                    Key::tree(reader.index, node),
                    "the trees hold more nodes than items allow",
                ));
            }
            match store::tree_node::<D>(reader.db, rtxn, reader.index, node)? {
                Node::Descendants(bucket) => {
                    for item in bucket.items.iter() {
                        if filter.as_ref().is_none_or(|filter| filter.contains(item)) && seen.insert(item) {
                            gathered.push(item);
                        }
                    }
                }
                Node::SplitPlaneNormal(split) => {
                    let margin =
                        if split.is_random() { 0.0 } else { D::margin(split.normal, split.offset, &query_leaf) };
                    queue.push(Pending { priority: priority.min(margin), node: split.right });
                    queue.push(Pending { priority: priority.min(-margin), node: split.left });
                }
                Node::Leaf(_) => {
                    return Err(Error::corrupted(Key::tree(reader.index, node), "a tree node holds a vector"));
                }
            }
        }
        // In id order, the look-ups walk LMDB's pages in order.
        gathered.sort_unstable();
        self.rank(rtxn, &query, gathered)
    }

    /// Scores `items` exactly and keeps the `count` nearest, nearest first.
    fn rank(
        &self,
        rtxn: &RoTxn,
        query: &D::Query,
        items: impl IntoIterator<Item = ItemId>,
    ) -> Result<Vec<(ItemId, f32)>> {
        let reader = self.reader;
        // Every look-up first, then every distance: the distances do not wait
        // on one another's vectors, so the processor fetches several at once.
        let mut leaves = Vec::new();
        for item in items {
            let Some(leaf) = store::leaf::<D>(reader.db, rtxn, reader.index, item, reader.dimensions)? else {
                return Err(Error::corrupted(Key::item(reader.index, item), "an item of the trees has no vector"));
            };
            leaves.push((item, leaf));
        }
        let mut scored: Vec<(f32, ItemId)> =
            leaves.iter().map(|(item, leaf)| (D::distance(query, leaf), *item)).collect();
        let by_distance = |a: &(f32, ItemId), b: &(f32, ItemId)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
        if scored.len() > self.count {
            scored.select_nth_unstable_by(self.count - 1, by_distance);
            scored.truncate(self.count);
        }
        scored.sort_unstable_by(by_distance);
        Ok(scored.into_iter().map(|(distance, item)| (item, D::user_distance(distance))).collect())
    }
}
