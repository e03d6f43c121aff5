//! [`QueryBuilder`]: nearest-neighbour search over the read layer.

use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::num::NonZeroUsize;

use heed::RoTxn;
use roaring::RoaringBitmap;

use super::Reader;
use crate::codes::{self, BLOCK, CodeQuery, CodeSpace, Codebook};
use crate::error::Error;
use crate::item::Leaf;
use crate::key::Key;
use crate::layout::{NodeView, PADDING, RunChunk, TreeRun, node_key};
use crate::vector::VectorCodec;
use crate::writer::check_query;
use crate::{Distance, ItemId, Result};

/// With a filter of at most this many items, every item of the filter is a
/// candidate, and the trees are not searched.
pub const DEFAULT_EXACT_BELOW_COUNT: u64 = 2_000;
/// With a filter of at most this share of the index, every item of the
/// filter is a candidate, and the trees are not searched.
pub const DEFAULT_EXACT_BELOW_RATIO: f64 = 0.01;
/// A search through the trees' planes that would gather at least this
/// share of the items it may return scores them all in slot order instead
/// (see [`QueryBuilder::search_k`]).
const SCAN_ABOVE_SHARE: f64 = 0.1;
/// The same share for a search through the trees' partitions, whose codes
/// cost two to three times as much as in a scan, the ranking of the
/// partitions included (measured on pypi-minilm, and on 100k generated
/// embeddings, where scoring 44% of the codes in partitions took 10% more
/// time than scanning them all).
const PROBE_SCAN_ABOVE_SHARE: f64 = 0.35;
/// The same share for a search through the partitions under a filter,
/// which looks up every code's item in the filter to count what it
/// gathered: at 1M generated embeddings and a filter keeping 10% of them,
/// reading the partitions for 15,000 of its items (0.15 of them) answered
/// 44 queries a second where a scan of every code answers about 130.
const FILTERED_PROBE_SCAN_ABOVE_SHARE: f64 = 0.1;
/// How many candidates ahead of the one scored exactly the re-ranking asks
/// the CPU to fetch.
const PREFETCH_AHEAD: usize = 2;
/// The candidates a query through the trees' planes (an index without
/// codes) gathers per neighbour asked for, unless told otherwise.
pub const DEFAULT_SEARCH_K_PER_RESULT: usize = 1_000;

/// The codes a query of an index with codes scores, unless told otherwise:
/// `count × oversampling × max(1,500, 1.5 √n)` for an index of `n` items.
///
/// Up to about 43,000 items that is more than 35% of them for ten
/// neighbours, and the query scans every code (on pypi-minilm, 40,000
/// sentence embeddings: recall@10 0.997). Above, the work grows as the
/// square root of the items: at 1M generated embeddings of 384
/// dimensions, 15,000 codes (1.5%) for recall@10 0.99 (see README, "How it
/// scales").
pub fn default_search_k(count: usize, oversampling: usize, n_items: u64) -> usize {
    let per_result = ((n_items as f64).sqrt() * 1.5).max(1_500.0) as usize;
    count.saturating_mul(oversampling).saturating_mul(per_result)
}

/// A nearest-neighbour query; created by [`Reader::nns`].
///
/// In an index with codes (the `f32` distances from
/// [`crate::MIN_CODE_DIMENSIONS`] dimensions), the items are clustered into
/// about `4 √n` partitions, each with the code of its centroid and its
/// items' codes, once in their nearest cluster and once in a neighbouring
/// one. The search ranks the partitions by their centroids and scores the
/// codes of the nearest, a
/// block of 32 at a time, until it has scored `search_k`; then the best are
/// ranked again by their exact distance (see [`QueryBuilder::rerank`]).
/// Without codes, it walks all the trees at once, always descending next
/// into the node whose plane the query is nearest to the right side of,
/// and gathers the items of the buckets it reaches until it holds
/// `search_k` distinct candidates, each scored exactly. When `search_k`
/// reaches 35% of the items (a tenth without codes), every item is scored
/// in slot order instead: with the default `search_k`, every query for ten
/// neighbours in an index of up to about 43,000 items.
#[derive(Debug, Clone)]
pub struct QueryBuilder<'r, 't, D: Distance> {
    reader: &'r Reader<'t, D>,
    count: usize,
    search_k: Option<NonZeroUsize>,
    oversampling: NonZeroUsize,
    candidates: Option<&'r RoaringBitmap>,
    exact_below_count: u64,
    exact_below_ratio: f64,
    rerank: Option<NonZeroUsize>,
}

/// The reusable memory of a query: the candidates gathered, as bits over
/// the slots, the partitions by distance, the queue of nodes to visit and
/// the shortlists. Keep one per thread and pass it to
/// [`QueryBuilder::by_vector_with`] so that queries allocate nothing once
/// it has grown; [`QueryBuilder::by_vector`] uses one per thread of its
/// own.
#[derive(Debug, Default)]
pub struct Searcher {
    /// The slots seen, one bit each.
    seen: Vec<u64>,
    /// The slots seen that the query may return.
    accepted: Vec<u64>,
    /// The words of `seen` that hold a bit.
    touched: Vec<u32>,
    queue: BinaryHeap<Pending>,
    /// Every tree's partitions, `(estimate, tree, partition)`, by how near
    /// their centroids lie.
    partitions: Vec<(f32, u32, u32)>,
    /// `(score, slot or id)` of the best candidates so far.
    shortlist: Vec<(f32, u32)>,
    /// The smallest upper bounds of the candidates' distances.
    uppers: BinaryHeap<Score>,
    /// The shortlist ranked by exact distances.
    ranked: Vec<(f32, u32)>,
    stats: QueryStats,
}

/// What the last query of a [`Searcher`] did: where the time of a query
/// goes, to tune `search_k` and `rerank`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Partitions read, or, in an index without codes, tree nodes visited.
    pub nodes: u64,
    /// Candidates scored first: by their codes, or exactly without codes.
    pub candidates: u64,
    /// Codes whose distance was estimated, 32 at a time (a block of codes
    /// costs the same however many of its codes are candidates).
    pub codes: u64,
    /// Distances computed exactly.
    pub exact_distances: u64,
}

impl Searcher {
    /// An empty searcher; it grows with the first queries.
    pub fn new() -> Searcher {
        Searcher::default()
    }

    /// What its last query did.
    pub fn stats(&self) -> QueryStats {
        self.stats
    }

    /// Clears what the last query left (all of it, if it failed) and makes
    /// room for `n_slots` slots.
    fn reset(&mut self, n_slots: u32) {
        for &word in &self.touched {
            self.seen[word as usize] = 0;
            self.accepted[word as usize] = 0;
        }
        self.touched.clear();
        self.queue.clear();
        self.stats = QueryStats::default();
        let words = n_slots.div_ceil(64) as usize;
        if self.seen.len() < words {
            self.seen.resize(words, 0);
            self.accepted.resize(words, 0);
        }
    }
}

/// A query's code tables, prepared when first needed: scoring a few
/// scattered candidates exactly needs none.
struct LazyCodeQuery<'c> {
    space: CodeSpace,
    codebook: &'c Codebook,
    /// The query in code space.
    vector: Vec<f32>,
    prepared: OnceCell<CodeQuery>,
}

impl LazyCodeQuery<'_> {
    fn get(&self) -> &CodeQuery {
        self.prepared.get_or_init(|| CodeQuery::new(self.space, self.codebook, &self.vector))
    }
}

/// The candidates worth an exact distance, from their first scores.
///
/// With a `keep`, the `keep` smallest scores (exact distances, or estimates
/// for a set `rerank`), in a buffer of twice as many cut back when full, so
/// that most offers cost one comparison. Without, every candidate whose
/// lower bound is at most the `count`-th smallest upper bound: no other can
/// be among the `count` nearest (as far as the bounds hold).
struct Shortlist<'s> {
    /// `(score or lower bound, slot or id)`.
    items: &'s mut Vec<(f32, u32)>,
    mode: Mode<'s>,
    /// Scores above this cannot make the list.
    bound: f32,
    /// The length at which the list is cut again.
    next_cut: usize,
    /// How many candidates were offered.
    offered: u64,
    /// How many blocks of codes were estimated.
    blocks: u64,
    /// The item id of a key, to break ties: among equal scores, smaller
    /// ids first, whatever the slots.
    id: &'s dyn Fn(u32) -> u32,
}

enum Mode<'s> {
    Keep(usize),
    /// The `count` smallest upper bounds so far (a max-heap).
    Bounds {
        count: usize,
        uppers: &'s mut BinaryHeap<Score>,
    },
}

/// An `f32` ordered by `total_cmp`, for heaps.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Score(f32);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl<'s> Shortlist<'s> {
    fn new(items: &'s mut Vec<(f32, u32)>, mode: Mode<'s>, id: &'s dyn Fn(u32) -> u32) -> Shortlist<'s> {
        items.clear();
        let mode = match mode {
            Mode::Keep(keep) => Mode::Keep(keep.max(1)),
            Mode::Bounds { count, uppers } => {
                uppers.clear();
                Mode::Bounds { count: count.max(1), uppers }
            }
        };
        let next_cut = match mode {
            Mode::Keep(keep) => keep.saturating_mul(2),
            Mode::Bounds { count, .. } => 1024.max(4 * count),
        };
        Shortlist { items, mode, bound: f32::INFINITY, next_cut, offered: 0, blocks: 0, id }
    }

    /// Offers a candidate whose first score is `score`, or whose distance
    /// lies between `score` and `upper` (without a `keep`).
    #[inline]
    fn offer(&mut self, score: f32, upper: f32, key: u32) {
        self.offered += 1;
        if score > self.bound {
            return;
        }
        self.items.push((score, key));
        if let Mode::Bounds { count, uppers } = &mut self.mode {
            if uppers.len() < *count {
                uppers.push(Score(upper));
            } else if uppers.peek().is_some_and(|top| upper < top.0) {
                uppers.pop();
                uppers.push(Score(upper));
            }
            if uppers.len() == *count {
                self.bound = uppers.peek().map_or(f32::INFINITY, |top| top.0);
            }
        }
        if self.items.len() >= self.next_cut {
            self.cut();
        }
    }

    fn cut(&mut self) {
        match self.mode {
            Mode::Keep(keep) => {
                if self.items.len() > keep {
                    let id = self.id;
                    self.items.select_nth_unstable_by(keep - 1, |a, b| by_score(a, b, id));
                    self.items.truncate(keep);
                    self.bound = self.items.iter().map(|&(score, _)| score).fold(f32::NEG_INFINITY, f32::max);
                }
            }
            Mode::Bounds { count, .. } => {
                let bound = self.bound;
                self.items.retain(|&(lower, _)| lower <= bound);
                self.next_cut = self.next_cut.max(2 * self.items.len()).max(4 * count);
            }
        }
    }

    /// The candidates kept, smallest score first, how many were offered,
    /// and how many blocks of codes were estimated.
    fn finish(mut self) -> (&'s [(f32, u32)], u64, u64) {
        self.cut();
        let id = self.id;
        self.items.sort_unstable_by(|a, b| by_score(a, b, id));
        (self.items, self.offered, self.blocks)
    }
}

/// Marks `slot` as seen in the searcher's bits, listing its word in
/// `touched` if it was clear; returns its word and bit, or `None` if it was
/// seen before.
#[inline]
fn first_sight(seen: &mut [u64], touched: &mut Vec<u32>, slot: u32) -> Option<(usize, u64)> {
    let (word, bit) = ((slot >> 6) as usize, 1u64 << (slot & 63));
    if seen[word] & bit != 0 {
        return None;
    }
    if seen[word] == 0 {
        touched.push(word as u32);
    }
    seen[word] |= bit;
    Some((word, bit))
}

/// Smaller scores first, then smaller ids.
fn by_score(a: &(f32, u32), b: &(f32, u32), id: &dyn Fn(u32) -> u32) -> Ordering {
    a.0.total_cmp(&b.0).then_with(|| id(a.1).cmp(&id(b.1)))
}

thread_local! {
    static SEARCHER: RefCell<Searcher> = RefCell::new(Searcher::new());
}

/// A node to visit, ordered by how near the query is to its side of the
/// planes above it (larger first).
#[derive(Debug, PartialEq)]
struct Pending {
    priority: f32,
    tree: u32,
    addr: u32,
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority.total_cmp(&other.priority).then((other.tree, other.addr).cmp(&(self.tree, self.addr)))
    }
}

impl<'r, 't, D: Distance> QueryBuilder<'r, 't, D> {
    pub(crate) fn new(reader: &'r Reader<'t, D>, count: usize) -> QueryBuilder<'r, 't, D> {
        QueryBuilder {
            reader,
            // No answer holds more items than the build has slots; a larger
            // count would only size the scratch for nothing (or overflow).
            count: count.min(reader.metadata.n_slots as usize),
            search_k: None,
            oversampling: NonZeroUsize::new(D::DEFAULT_OVERSAMPLING).unwrap_or(NonZeroUsize::MIN),
            candidates: None,
            exact_below_count: DEFAULT_EXACT_BELOW_COUNT,
            exact_below_ratio: DEFAULT_EXACT_BELOW_RATIO,
            rerank: None,
        }
    }

    /// How many candidates, of those ranked best by their codes, are ranked
    /// again by their exact distance (at least `count`). More means better
    /// recall and slower queries.
    ///
    /// Unset, the re-ranking follows the codes' error bound (see
    /// [`crate::distances`]): every candidate whose estimate, less the most
    /// it can be off by, could still place it among the `count` nearest is
    /// ranked exactly, and no other. The answer is then, with high
    /// probability, the one exact scores of every candidate would give, at
    /// the cost of as many exact distances as the data needs: a few dozen
    /// on sentence embeddings, hundreds on data whose neighbours are all at
    /// nearly the same distance. A set `rerank` caps that work.
    ///
    /// Indexes without codes (the distances over bits, and fewer than
    /// [`crate::MIN_CODE_DIMENSIONS`] dimensions) score every candidate
    /// exactly, and this does nothing.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn search(rtxn: &spinney::heed::RoTxn, reader: &spinney::Reader<spinney::distances::Cosine>, query: &[f32]) -> spinney::Result<()> {
    /// use std::num::NonZeroUsize;
    /// // At most 40 exact distances per query, whatever the bound says.
    /// let nearest = reader.nns(10).rerank(NonZeroUsize::new(40).unwrap()).by_vector(rtxn, query)?;
    /// # Ok(()) }
    /// ```
    pub fn rerank(&mut self, rerank: NonZeroUsize) -> &mut Self {
        self.rerank = Some(rerank);
        self
    }

    /// How many candidates to score before ranking the best exactly: in an
    /// index with codes, the codes of the partitions nearest the query (an
    /// item in the partitions of several trees counts once for each);
    /// without, the distinct items gathered from the trees. More means better
    /// recall and slower queries. Unset, it is [`default_search_k`] with
    /// codes, `count × oversampling × DEFAULT_SEARCH_K_PER_RESULT` without
    /// ([`QueryBuilder::effective_search_k`] tells which).
    ///
    /// When `search_k` reaches 35% of the items the query may return (a
    /// tenth under a filter, or without codes), every one of them is
    /// scored instead, in slot order: a code costs less in a scan than in
    /// a partition, where a filter also looks up each code's item, and ten
    /// times less than an item gathered through the trees' planes
    /// (measured on pypi-minilm, and on 10k to 1M items of 128 and 384
    /// dimensions). With `search_k` and `rerank` at least the number of
    /// items, the answer is exact.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn search(rtxn: &spinney::heed::RoTxn, reader: &spinney::Reader<spinney::distances::Cosine>, query: &[f32]) -> spinney::Result<()> {
    /// use std::num::NonZeroUsize;
    /// // Fewer candidates than the default: faster, lower recall.
    /// let nearest = reader.nns(10).search_k(NonZeroUsize::new(2_000).unwrap()).by_vector(rtxn, query)?;
    /// # Ok(()) }
    /// ```
    pub fn search_k(&mut self, search_k: NonZeroUsize) -> &mut Self {
        self.search_k = Some(search_k);
        self
    }

    /// Multiplies the default `search_k`. It has no effect when `search_k`
    /// is set. Defaults to [`Distance::DEFAULT_OVERSAMPLING`]: 1 for the
    /// `f32` distances, 4 for the distances over bits, which compare
    /// candidates faster.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn search(rtxn: &spinney::heed::RoTxn, reader: &spinney::Reader<spinney::distances::Cosine>, query: &[f32]) -> spinney::Result<()> {
    /// use std::num::NonZeroUsize;
    /// // Twice the default search_k.
    /// let nearest = reader.nns(10).oversampling(NonZeroUsize::new(2).unwrap()).by_vector(rtxn, query)?;
    /// # Ok(()) }
    /// ```
    pub fn oversampling(&mut self, oversampling: NonZeroUsize) -> &mut Self {
        self.oversampling = oversampling;
        self
    }

    /// Only return items of `candidates`. Items not in the index are ignored.
    ///
    /// When the filter keeps few items (see [`QueryBuilder::exact_below`]),
    /// every one of them is a candidate, and the trees are not searched.
    /// Otherwise only the filtered items count toward `search_k`, gathered
    /// from the trees or, when `search_k` reaches a tenth of them, by
    /// scanning every slot. Recall holds at any selectivity: on
    /// sentence embeddings, recall@10 0.995 with filters keeping 0.1% to
    /// 50% of the items, at random or clustered (see the README).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn search(reader: &spinney::Reader<spinney::distances::Cosine>, rtxn: &spinney::heed::RoTxn, query: &[f32]) -> spinney::Result<()> {
    /// use roaring::RoaringBitmap;
    /// // The application's own selection, by id.
    /// let in_stock: RoaringBitmap = (0..1_000).filter(|id| id % 3 == 0).collect();
    /// let nearest = reader.nns(10).candidates(&in_stock).by_vector(rtxn, query)?;
    /// assert!(nearest.iter().all(|(id, _)| in_stock.contains(*id)));
    /// # Ok(()) }
    /// ```
    pub fn candidates(&mut self, candidates: &'r RoaringBitmap) -> &mut Self {
        self.candidates = Some(candidates);
        self
    }

    /// Take every item of the filter as a candidate, without searching the
    /// trees, when it keeps at most `count` items, or at most `ratio` of
    /// the index. Defaults: [`DEFAULT_EXACT_BELOW_COUNT`] and
    /// [`DEFAULT_EXACT_BELOW_RATIO`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn search(rtxn: &spinney::heed::RoTxn, reader: &spinney::Reader<spinney::distances::Cosine>, query: &[f32]) -> spinney::Result<()> {
    /// use roaring::RoaringBitmap;
    /// let few: RoaringBitmap = (0..5_000).collect();
    /// // Score every item of filters keeping up to 10,000 items, or 5% of the index.
    /// let nearest = reader.nns(10).candidates(&few).exact_below(10_000, 0.05).by_vector(rtxn, query)?;
    /// # Ok(()) }
    /// ```
    pub fn exact_below(&mut self, count: u64, ratio: f64) -> &mut Self {
        self.exact_below_count = count;
        self.exact_below_ratio = ratio;
        self
    }

    /// The `count` nearest items to `vector`, nearest first, with their
    /// distances.
    ///
    /// `rtxn` is the transaction the reader was opened with, as in arroy:
    /// a query reads nothing through it, since [`Reader::open`] looked up
    /// every value the query reads.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn search(rtxn: &spinney::heed::RoTxn, reader: &spinney::Reader<spinney::distances::Cosine>, query: &[f32]) -> spinney::Result<()> {
    /// let nearest = reader.nns(10).by_vector(rtxn, query)?;
    /// for (id, distance) in nearest {
    ///     println!("{id}: {distance}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn by_vector(&self, rtxn: &RoTxn, vector: &[f32]) -> Result<Vec<(ItemId, f32)>> {
        SEARCHER.with_borrow_mut(|searcher| self.by_vector_with(rtxn, vector, searcher))
    }

    /// [`QueryBuilder::by_vector`] with the caller's [`Searcher`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn search(rtxn: &spinney::heed::RoTxn, reader: &spinney::Reader<spinney::distances::Cosine>, query: &[f32]) -> spinney::Result<()> {
    /// // One searcher per thread, reused: its scratch and its statistics.
    /// let mut searcher = spinney::Searcher::new();
    /// let nearest = reader.nns(10).by_vector_with(rtxn, query, &mut searcher)?;
    /// println!("{:?}", searcher.stats());
    /// # Ok(()) }
    /// ```
    pub fn by_vector_with(&self, _rtxn: &RoTxn, vector: &[f32], searcher: &mut Searcher) -> Result<Vec<(ItemId, f32)>> {
        check_query(vector, self.reader.dimensions)?;
        self.search(&D::query(vector), searcher)
    }

    /// The `count` nearest items to the vector of `item` (itself included),
    /// or `None` when `item` is not in the index.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn search(rtxn: &spinney::heed::RoTxn, reader: &spinney::Reader<spinney::distances::Cosine>, query: &[f32]) -> spinney::Result<()> {
    /// // The items most like item 42 (42 first), if it exists.
    /// if let Some(similar) = reader.nns(10).by_item(rtxn, 42)? {
    ///     println!("{similar:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn by_item(&self, _rtxn: &RoTxn, item: ItemId) -> Result<Option<Vec<(ItemId, f32)>>> {
        let Some(leaf) = self.reader.leaf(item)? else { return Ok(None) };
        let query = D::item_query(&leaf, self.reader.dimensions);
        SEARCHER.with_borrow_mut(|searcher| self.search(&query, searcher)).map(Some)
    }

    fn search(&self, query: &D::Query, searcher: &mut Searcher) -> Result<Vec<(ItemId, f32)>> {
        let reader = self.reader;
        if self.count == 0 || reader.is_empty() {
            return Ok(Vec::new());
        }
        searcher.reset(reader.metadata.n_slots);
        // A filter that keeps few items gives them all as candidates.
        let exact_below = self.exact_below_count.max((self.exact_below_ratio * reader.n_items() as f64) as u64);
        let few = self.candidates.filter(|candidates| candidates.intersection_len(&reader.visible) <= exact_below);
        // Buckets may hold items deleted since the last build: with any
        // pending deletion, the visible items filter every bucket.
        let filter: Option<Cow<'_, RoaringBitmap>> = match self.candidates {
            // Not read when the filter's items are the candidates.
            Some(_) if few.is_some() => None,
            Some(candidates) => Some(Cow::Owned(candidates & &reader.visible)),
            None if !reader.hidden.is_empty() => Some(Cow::Borrowed(&reader.visible)),
            None => None,
        };
        let reachable = filter.as_ref().map_or(reader.n_items(), |filter| filter.len());
        let search_k = self.effective_search_k() as u64;
        let filter = filter.as_deref();
        let codes = codes::space::<D>(reader.dimensions).zip(reader.codebook.as_ref()).map(|(space, codebook)| {
            let mut vector = Vec::new();
            D::code_vector(&D::query_leaf(query), &mut vector);
            LazyCodeQuery { space, codebook, vector, prepared: OnceCell::new() }
        });
        // Without codes every candidate is scored exactly: keep the answer.
        let Searcher { seen, accepted, touched, queue, partitions, shortlist, uppers, ranked, stats } = searcher;
        let mode = match (&codes, self.rerank) {
            (None, _) => Mode::Keep(self.count),
            (Some(_), Some(rerank)) => Mode::Keep(rerank.get().max(self.count)),
            (Some(_), None) => Mode::Bounds { count: self.count, uppers },
        };
        let bounded = matches!(mode, Mode::Bounds { .. });
        let slots = &reader.layout.slots;
        let id = |slot| slots.id(slot);
        let mut candidates = Shortlist::new(shortlist, mode, &id);
        if let Some(few) = few {
            self.mark_items(few, seen, accepted, touched)?;
            stats.exact_distances = self.score(query, seen, accepted, touched, &mut candidates);
        } else if search_k as f64 >= self.scan_above() * reachable as f64 {
            self.scan(query, codes.as_ref().map(LazyCodeQuery::get), filter, &mut candidates)?;
        } else if let Some((runs, codes)) = reader.runs.as_deref().zip(codes.as_ref()) {
            let codes = codes.get();
            stats.nodes =
                self.probe(query, runs, codes, filter, search_k, seen, touched, partitions, &mut candidates)?;
        } else {
            stats.nodes = self.gather(query, filter, search_k, seen, accepted, touched, queue)?;
            stats.exact_distances = self.score(query, seen, accepted, touched, &mut candidates);
        }
        let (candidates, offered, blocks) = candidates.finish();
        stats.candidates = offered;
        stats.codes = blocks * BLOCK as u64;
        if codes.is_none() {
            stats.exact_distances = offered;
            return self.answer(candidates, few);
        }
        // The candidates by estimates (or lower bounds), ranked by exact
        // distances; past the `count`-th exact distance, no lower bound
        // can do better.
        let mut best = Shortlist::new(ranked, Mode::Keep(self.count), &id);
        let mut exact = BinaryHeap::with_capacity(self.count + 1);
        for (at, &(lower, slot)) in candidates.iter().enumerate() {
            if bounded && exact.len() == self.count && exact.peek().is_some_and(|&Score(worst)| lower > worst) {
                break;
            }
            // The vectors are where their items were added, far apart: the
            // next ones' memory is fetched while this one is scored.
            if let Some(&(_, ahead)) = candidates.get(at + PREFETCH_AHEAD) {
                self.reader.prefetch(ahead);
            }
            let distance = D::distance(query, &self.leaf(slot));
            stats.exact_distances += 1;
            exact.push(Score(distance));
            if exact.len() > self.count {
                exact.pop();
            }
            best.offer(distance, distance, slot);
        }
        let (best, _, _) = best.finish();
        self.answer(best, few)
    }

    /// Marks the slots of the items of `candidates` the query may return as
    /// gathered: their ranks among the built items, which the directory
    /// turns into slots. A damaged directory could name a slot that holds
    /// another item: [`QueryBuilder::answer`] checks the ids it returns.
    fn mark_items(
        &self,
        candidates: &RoaringBitmap,
        seen: &mut [u64],
        accepted: &mut [u64],
        touched: &mut Vec<u32>,
    ) -> Result<()> {
        let reader = self.reader;
        for item in candidates.iter() {
            if !reader.visible.contains(item) {
                continue;
            }
            let slot = reader.slot_at_rank(reader.rank(item))?;
            let (word, bit) = ((slot >> 6) as usize, 1u64 << (slot & 63));
            if seen[word] == 0 {
                touched.push(word as u32);
            }
            seen[word] |= bit;
            accepted[word] |= bit;
        }
        Ok(())
    }

    /// Whether the item in `slot` may be returned.
    #[inline]
    fn accepts(&self, filter: Option<&RoaringBitmap>, slot: u32) -> bool {
        filter.is_none_or(|filter| filter.contains(self.reader.layout.slots.id(slot)))
    }

    /// The leaf a query compares with in `slot`.
    #[inline]
    fn leaf(&self, slot: u32) -> Leaf<'t, D> {
        self.reader.slot_leaf(slot)
    }

    /// Offers the candidate in `slot`, whose code estimates its distance
    /// at `estimate` give or take `error`: its exact distance instead for
    /// an item replaced since the last build, whose code is its old
    /// vector's.
    #[inline]
    fn offer(&self, query: &D::Query, best: &mut Shortlist<'_>, slot: u32, estimate: f32, error: f32) {
        match self.replaced(slot) {
            true => {
                let distance = D::distance(query, &self.leaf(slot));
                best.offer(distance, distance, slot);
            }
            false => match best.mode {
                Mode::Keep(_) => best.offer(estimate, estimate, slot),
                Mode::Bounds { .. } => best.offer(estimate - error, estimate + error, slot),
            },
        }
    }

    /// Whether the item in `slot` was replaced since the last build: its
    /// code is its old vector's, so it is scored exactly.
    #[inline]
    fn replaced(&self, slot: u32) -> bool {
        !self.reader.replaced.is_empty() && self.reader.replaced.contains_key(&slot)
    }

    /// Scores every item the query may return into `best`: by their codes,
    /// a block at a time, in the run of the first tree (which holds each
    /// built item once), or exactly in slot order for an index without.
    fn scan(
        &self,
        query: &D::Query,
        codes: Option<&CodeQuery>,
        filter: Option<&RoaringBitmap>,
        best: &mut Shortlist<'_>,
    ) -> Result<()> {
        let reader = self.reader;
        let keeps = self.keeps(filter);
        match codes.zip(reader.runs.as_deref()) {
            Some((codes, [run, ..])) => {
                let mut scores = ([0.0; BLOCK], [0.0; BLOCK]);
                let mut fresh = |slot| keeps(slot);
                for chunk in &run.chunks {
                    for block in 0..chunk.lanes() / BLOCK {
                        self.offer_block(query, codes, (0, chunk), block, u32::MAX, &mut fresh, &mut scores, best)?;
                    }
                }
            }
            _ => {
                for slot in (0..reader.metadata.n_slots).filter(|&slot| keeps(slot)) {
                    let distance = D::distance(query, &self.leaf(slot));
                    best.offer(distance, distance, slot);
                }
            }
        }
        Ok(())
    }

    /// The `search_k` the query uses: the one set, or the default for the
    /// index (see [`QueryBuilder::search_k`]).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn search(reader: &spinney::Reader<spinney::distances::Cosine>) {
    /// println!("ten neighbours score {} codes", reader.nns(10).effective_search_k());
    /// # }
    /// ```
    pub fn effective_search_k(&self) -> usize {
        match (self.search_k, &self.reader.runs) {
            (Some(search_k), _) => search_k.get(),
            (None, Some(_)) => default_search_k(self.count, self.oversampling.get(), self.reader.n_items()),
            (None, None) => {
                self.count.saturating_mul(self.oversampling.get()).saturating_mul(DEFAULT_SEARCH_K_PER_RESULT)
            }
        }
    }

    /// The share of the items a query may return from which it scores them
    /// all rather than gather `search_k` of them.
    fn scan_above(&self) -> f64 {
        match (&self.reader.runs, self.candidates) {
            (Some(_), Some(_)) => FILTERED_PROBE_SCAN_ABOVE_SHARE,
            (Some(_), None) => PROBE_SCAN_ABOVE_SHARE,
            (None, _) => SCAN_ABOVE_SHARE,
        }
    }

    /// Whether the item in a slot may be returned: not free, not deleted
    /// since the last build, and kept by `filter`.
    fn keeps<'a>(&'a self, filter: Option<&'a RoaringBitmap>) -> impl Fn(u32) -> bool + 'a {
        let reader = self.reader;
        let (free, hidden) = (&reader.metadata.free, &reader.hidden);
        let every_slot = filter.is_none() && free.is_empty() && hidden.is_empty();
        move |slot: u32| every_slot || !(free.contains(slot) || hidden.contains(slot) || !self.accepts(filter, slot))
    }

    /// The lanes of a block whose first score, from `estimates` and
    /// `errors`, can make the list as it stands (offers check again); every
    /// lane when items were replaced since the last build, to be scored
    /// exactly.
    #[inline]
    fn passing(&self, estimates: &[f32; BLOCK], errors: &[f32; BLOCK], best: &Shortlist<'_>) -> u32 {
        if !self.reader.replaced.is_empty() {
            return u32::MAX;
        }
        let bound = best.bound;
        let bounded = matches!(best.mode, Mode::Bounds { .. });
        let mut passing = 0u32;
        for (lane, (&estimate, &error)) in estimates.iter().zip(errors).enumerate() {
            let first = if bounded { estimate - error } else { estimate };
            passing |= u32::from(first <= bound) << lane;
        }
        passing
    }

    /// Walks the trees, best node first, until `search_k` distinct
    /// candidates are gathered in the searcher's bits; returns how many
    /// nodes it visited.
    #[allow(clippy::too_many_arguments)]
    fn gather(
        &self,
        query: &D::Query,
        filter: Option<&RoaringBitmap>,
        search_k: u64,
        seen: &mut [u64],
        accepted: &mut [u64],
        touched: &mut Vec<u32>,
        queue: &mut BinaryHeap<Pending>,
    ) -> Result<u64> {
        let reader = self.reader;
        let (layout, index, n_slots) = (&reader.layout, reader.index, reader.metadata.n_slots);
        let query_leaf = D::query_leaf(query);
        for (tree, view) in layout.trees.iter().enumerate() {
            queue.push(Pending { priority: f32::INFINITY, tree: tree as u32, addr: view.root });
        }
        let (mut gathered, mut visits) = (0u64, 0u64);
        while gathered < search_k {
            let Some(Pending { priority, tree, addr }) = queue.pop() else { break };
            visits += 1;
            if visits > layout.visit_limit {
                return Err(Error::corrupted(node_key(index, tree as usize, addr), "the trees' nodes share children"));
            }
            match layout.node(index, tree as usize, addr)? {
                NodeView::Bucket(slots) => {
                    for slot in slots.iter() {
                        if slot >= n_slots {
                            let reason = format!("the bucket at {addr} holds slot {slot} of {n_slots}");
                            return Err(Error::corrupted(node_key(index, tree as usize, addr), reason));
                        }
                        let Some((word, bit)) = first_sight(seen, touched, slot) else { continue };
                        if self.accepts(filter, slot) {
                            accepted[word] |= bit;
                            gathered += 1;
                        }
                    }
                }
                NodeView::Split { left, right, offset, normal } => {
                    let normal = D::NormalCodec::view(normal)
                        .map_err(|e| Error::corrupted(node_key(index, tree as usize, addr), e))?;
                    let margin = D::margin(normal, offset, &query_leaf);
                    queue.push(Pending { priority: priority.min(margin), tree, addr: right });
                    queue.push(Pending { priority: priority.min(-margin), tree, addr: left });
                }
                // Both sides alike; `-0.0` orders the left side after the right.
                NodeView::Random { left, right } => {
                    queue.push(Pending { priority: priority.min(0.0), tree, addr: right });
                    queue.push(Pending { priority: priority.min(-0.0), tree, addr: left });
                }
            }
        }
        Ok(visits)
    }

    /// Scores the partitions of every run whose centroids lie nearest to
    /// the query, nearest first, into `best`, until they held `search_k`
    /// items the query may return (an item in the partitions of several
    /// runs counting once for each); returns how many partitions it
    /// visited. Each partition's codes are read block by block, as a scan
    /// reads them, the lanes of its neighbours masked, and the next
    /// partition's codes are fetched while one is scored.
    #[allow(clippy::too_many_arguments)]
    fn probe(
        &self,
        query: &D::Query,
        runs: &[TreeRun<'_>],
        codes: &CodeQuery,
        filter: Option<&RoaringBitmap>,
        search_k: u64,
        seen: &mut [u64],
        touched: &mut Vec<u32>,
        order: &mut Vec<(f32, u32, u32)>,
        best: &mut Shortlist<'_>,
    ) -> Result<u64> {
        let reader = self.reader;
        let n_slots = reader.metadata.n_slots;
        let keeps = self.keeps(filter);
        let every_item = filter.is_none() && reader.hidden.is_empty();
        let mut scores = ([0.0; BLOCK], [0.0; BLOCK]);
        order.clear();
        for (tree, run) in runs.iter().enumerate() {
            let count = run.partitions.len();
            for block in 0..count.div_ceil(BLOCK) {
                let (estimates, errors) = &mut scores;
                codes.estimate_block(run.partitions.codes(), block, estimates, errors);
                let lanes = (count - block * BLOCK).min(BLOCK);
                order.extend((0..lanes).map(|lane| (estimates[lane], tree as u32, (block * BLOCK + lane) as u32)));
            }
        }
        // Sort only the partitions the query is likely to reach: twice as
        // many as would hold `search_k` items, and the rest if that falls
        // short.
        let per_partition = runs.len() as f64 * f64::from(n_slots) / order.len().max(1) as f64;
        let mut sorted = ((2.0 * search_k as f64 / per_partition.max(1.0)) as usize + 8).min(order.len());
        if sorted > 0 && sorted < order.len() {
            order.select_nth_unstable_by(sorted - 1, |a, b| a.0.total_cmp(&b.0));
        }
        order[..sorted].sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let (mut gathered, mut visits) = (0u64, 0usize);
        while gathered < search_k && visits < order.len() {
            if visits == sorted {
                order[sorted..].sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
                sorted = order.len();
            }
            let (_, tree, partition) = order[visits];
            visits += 1;
            // The next partition's codes are fetched while this one is scored.
            if let Some(&(_, next_tree, next)) = order[..sorted].get(visits) {
                let run = &runs[next_tree as usize];
                let [chunk, first, lanes] = run.partitions.place(next as usize);
                run.chunks[chunk as usize].prefetch(first as usize..(first + lanes) as usize);
            }
            let run = &runs[tree as usize];
            let [chunk, first, lanes] = run.partitions.place(partition as usize);
            let chunk = &run.chunks[chunk as usize];
            let (start, end) = (first as usize, (first + lanes) as usize);
            // An empty partition (all its items were deleted) has no block.
            let blocks = if lanes == 0 { 0..0 } else { start / BLOCK..end.div_ceil(BLOCK) };
            for block in blocks {
                // The partition's lanes of the block: its neighbours' may
                // share it.
                let (low, high) =
                    (start.max(block * BLOCK) - block * BLOCK, end.min((block + 1) * BLOCK) - block * BLOCK);
                let mask = (u32::MAX >> (BLOCK - (high - low))) << low;
                gathered += match every_item {
                    true => (high - low) as u64,
                    false => {
                        let lane_slot = |lane: usize| chunk.slot(block * BLOCK + lane);
                        (low..high).filter(|&lane| lane_slot(lane) < n_slots && keeps(lane_slot(lane))).count() as u64
                    }
                };
                // An item offered from another run's partition had the
                // same estimate then, and a bound no smaller: it is not
                // offered twice, and one not offered then is not now.
                let mut fresh = |slot| first_sight(seen, touched, slot).is_some() && keeps(slot);
                self.offer_block(query, codes, (tree, chunk), block, mask, &mut fresh, &mut scores, best)?;
            }
        }
        Ok(visits as u64)
    }

    /// Estimates block `block` of a chunk of tree `tree`'s run into `scores`
    /// and offers the slots of the lanes of `mask` that `fresh` accepts (it
    /// may mark them seen) whose first score can make the list as it
    /// stands (see [`QueryBuilder::passing`]).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn offer_block(
        &self,
        query: &D::Query,
        codes: &CodeQuery,
        (tree, chunk): (u32, &RunChunk<'_>),
        block: usize,
        mask: u32,
        fresh: &mut impl FnMut(u32) -> bool,
        scores: &mut ([f32; BLOCK], [f32; BLOCK]),
        best: &mut Shortlist<'_>,
    ) -> Result<()> {
        let (estimates, errors) = scores;
        let n_slots = self.reader.metadata.n_slots;
        codes.estimate_block(chunk.codes(), block, estimates, errors);
        best.blocks += 1;
        let mut lanes = self.passing(estimates, errors, best) & mask;
        while lanes != 0 {
            let lane = lanes.trailing_zeros() as usize;
            lanes &= lanes - 1;
            let slot = chunk.slot(block * BLOCK + lane);
            if slot == PADDING {
                continue;
            }
            if slot >= n_slots {
                return Err(self.slot_past_the_end(tree, slot));
            }
            if fresh(slot) {
                self.offer(query, best, slot, estimates[lane], errors[lane]);
            }
        }
        Ok(())
    }

    /// The error of tree `tree`'s run naming a slot past the last.
    #[cold]
    fn slot_past_the_end(&self, tree: u32, slot: u32) -> Error {
        let reason = format!("the run holds slot {slot} of {}", self.reader.metadata.n_slots);
        Error::corrupted(Key::partitions(self.reader.index, tree), reason)
    }

    /// Scores the gathered candidates exactly into `best`, in slot order so
    /// that vectors are read front to back, and clears the searcher's bits;
    /// returns how many it scored.
    fn score(
        &self,
        query: &D::Query,
        seen: &mut [u64],
        accepted: &mut [u64],
        touched: &mut Vec<u32>,
        best: &mut Shortlist<'_>,
    ) -> u64 {
        let mut exact = 0;
        touched.sort_unstable();
        for &word in touched.iter() {
            let mut bits = std::mem::take(&mut accepted[word as usize]);
            seen[word as usize] = 0;
            while bits != 0 {
                let slot = word * 64 + bits.trailing_zeros();
                bits &= bits - 1;
                let distance = D::distance(query, &self.leaf(slot));
                best.offer(distance, distance, slot);
                exact += 1;
            }
        }
        touched.clear();
        exact
    }

    /// The candidates of `best`, nearest first, with their ids and the
    /// distances users see; an error if one is not in `few`, the filter
    /// whose items were found through the directory.
    fn answer(&self, best: &[(f32, u32)], few: Option<&RoaringBitmap>) -> Result<Vec<(ItemId, f32)>> {
        let slots = &self.reader.layout.slots;
        let mut answer: Vec<(ItemId, f32)> = best.iter().map(|&(distance, slot)| (slots.id(slot), distance)).collect();
        if let Some(&(item, _)) = answer.iter().find(|(item, _)| few.is_some_and(|few| !few.contains(*item))) {
            let reason = format!("the directory points to item {item}, which the filter does not hold");
            return Err(Error::corrupted(Key::directory(self.reader.index, 0), reason));
        }
        answer.sort_unstable_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        for (_, distance) in &mut answer {
            *distance = D::user_distance(*distance);
        }
        Ok(answer)
    }
}
