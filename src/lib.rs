//! spinney: approximate nearest neighbours inside an LMDB database.
//!
//! An index is a forest of random-projection trees (as in Annoy) stored
//! beside your own data in one [`heed`] database: the same file, the same
//! transactions, the same crash safety. Each vector is written once, when
//! it is added, into a chunk of slots; a build writes beside them what
//! queries read (tree nodes, and compact codes of the vectors in clusters,
//! one run of them per tree) in large values, which queries walk in place in LMDB's memory map
//! with no LMDB call per node or per candidate: memory use is bounded by
//! the OS page cache, not by the size of the index. Builds grow the trees
//! in parallel with rayon.
//!
//! # Quickstart
//!
//! ```
//! use spinney::distances::Euclidean;
//! use spinney::heed::{CommitOrAbort, EnvOpenOptions};
//! use spinney::{Database, Reader, Writer};
//! use rand::SeedableRng;
//! use rand::rngs::StdRng;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! // SAFETY: the environment is opened once, in this process only.
//! let env = unsafe { EnvOpenOptions::new().map_size(64 * 1024 * 1024).open(dir.path())? };
//!
//! // One database holds up to 65,536 indexes.
//! let db: Database<'static, Euclidean> = env
//!     .create_databases_and_commit(env.write_txn()?, |opener, wtxn| {
//!         opener.create_database(wtxn, None).map(CommitOrAbort::<_, ()>::Commit)
//!     })?
//!     .unwrap_commit();
//!
//! // Add vectors to index 0, then build its trees, in one write transaction.
//! let mut wtxn = env.write_txn()?;
//! let writer = Writer::<Euclidean>::new(db, 0, 3);
//! writer.add_item(&mut wtxn, 0, &[0.0, 0.0, 1.0])?;
//! writer.add_item(&mut wtxn, 1, &[0.0, 1.0, 0.0])?;
//! writer.add_item(&mut wtxn, 2, &[1.0, 0.0, 0.0])?;
//! let mut rng = StdRng::seed_from_u64(42);
//! writer.builder(&mut rng).n_trees(4).build(&mut wtxn)?;
//! wtxn.commit()?;
//!
//! // Search it in a read transaction.
//! let rtxn = env.read_txn()?;
//! let reader = Reader::<Euclidean>::open(&rtxn, 0, db)?;
//! let nearest = reader.nns(2).by_vector(&rtxn, &[0.1, 0.9, 0.0])?;
//! assert_eq!(nearest[0].0, 1);
//! assert_eq!(nearest.len(), 2);
//! # Ok(()) }
//! ```
//!
//! # The model
//!
//! - **Items** are `(ItemId, Vec<f32>)` pairs, added with [`Writer::add_item`]
//!   and deleted with [`Writer::del_item`]. Added items become searchable
//!   after [`Builder::build`], inside the same write transaction; deleted
//!   ones disappear from answers at once.
//! - **Trees** split the items recursively by hyperplanes chosen with
//!   two-means until a node holds at most `split_after` items (a bucket).
//!   Each tree is grown from its own random stream, so the same seed gives
//!   the same bytes whatever the number of threads.
//! - **Partitions.** An index with codes (the `f32` distances from
//!   [`MIN_CODE_DIMENSIONS`] dimensions) has one run of codes per tree, cut
//!   into [`partition_count`] partitions: k-means clusters of the vectors,
//!   each with the code of its centroid and a copy of its items' codes. The
//!   first run holds each item in its nearest cluster, each further run in
//!   a neighbouring one that covers what the runs before miss.
//! - **Incremental builds.** After the first build, a build updates the
//!   existing trees for what changed since: work proportional to the changes
//!   and the paths they take, not to the index. Buckets that overflow are
//!   split, splits that empty collapse, lopsided splits are regrown. New
//!   items join their nearest clusters, and the runs are written anew.
//! - **Reads never stop.** [`Reader::open`] works while changes are pending
//!   and answers from the last build (see [`Reader`]).
//! - **Queries** ([`Reader::nns`]) rank every run's partitions by their
//!   centroids and score the codes of the nearest until they have scored
//!   `search_k` (without codes: descend all trees at once, best side first,
//!   and gather `search_k` candidates from the buckets they reach), or scan
//!   every item when `search_k` reaches 35% of them (a tenth without
//!   codes). Each candidate is scored by its code (one bit per dimension,
//!   see [`distances`]), and the few whose estimate could place them among
//!   the nearest are ranked by their exact distance. `candidates` restricts
//!   the answer to a bitmap of ids.
//!
//! # Limits
//!
//! - 65,536 indexes per database (`u16`), `u32` item ids, up to
//!   [`MAX_TREES`] trees.
//! - Little-endian targets only: the format is little-endian and vectors are
//!   read in place.
//! - One build of one index at a time (LMDB has one write transaction).
//!
//! The byte layout of everything stored is in [`mod@format`].

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(target_endian = "big")]
compile_error!("spinney reads little-endian vectors in place and only builds for little-endian targets");

mod arroy;
mod bits;
mod build;
mod codes;
mod distance;
mod error;
mod half;
mod item;
mod kernels;
mod key;
mod layout;
mod listing;
mod metadata;
mod progress;
mod reader;
mod store;
mod upgrade;
mod vector;
mod version;
mod writer;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

#[doc = include_str!("format.md")]
pub mod format {
    pub use crate::key::{Key, KeyCodec, KeyError, NodeMode, Prefix, PrefixCodec};
    pub use crate::layout::MAX_BUCKET;

    /// The value type of a spinney database: it only ties the database to
    /// the distance `D` of its indexes; spinney reads and writes the bytes
    /// itself (their layout is above).
    pub struct Entries<D>(std::marker::PhantomData<D>);
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub mod internals {
    //! The machinery behind [`Distance`](crate::Distance): how each distance
    //! stores its vectors, estimates from codes and splits the space.
    //!
    //! Nothing here is needed to use spinney, and none of it is covered by
    //! semantic versioning: the types are named so that the signatures of
    //! [`Machinery`] can be read, and [`Machinery`] is sealed, so no type
    //! outside spinney can implement it (and thus [`Distance`](crate::Distance)).

    pub use crate::bits::{Bits, PackedBits, SignedDot};
    pub use crate::codes::CodeSpace;
    pub use crate::distance::{BinaryQuery, ExactQuery, Machinery, MaxNorm, NormHeader, ScaleHeader};
    pub use crate::half::{F16, UnalignedF16};
    pub use crate::item::Leaf;
    pub use crate::vector::{F32, UnalignedF32, VectorCodec, VectorSizeError};
}

pub mod distances {
    //! The distances an index can use.
    //!
    //! [`Euclidean`], [`Cosine`], [`DotProduct`] and [`Manhattan`] store vectors
    //! as `f32`s and return exact distances.
    //!
    //! # Codes and re-ranking
    //!
    //! From [`MIN_CODE_DIMENSIONS`](crate::MIN_CODE_DIMENSIONS) (128) up, a
    //! build also stores a *code* per item of these distances: one bit per
    //! dimension and two `f32`s, 1/32 of the vector and 8 bytes. A query
    //! scores every candidate by its code, then computes the exact distance
    //! of the few whose estimate could place them among the nearest, and
    //! returns those exact distances.
    //!
    //! The codes are RaBitQ's (Gao & Long, 2024). A build takes the mean `c`
    //! of the items (when the forest is first grown; later builds keep it)
    //! and a random rotation `P` (three rounds of random sign flips and
    //! Walsh–Hadamard transforms: `O(d log d)`). An item `v` (its direction,
    //! for cosine) is stored as the signs `b ∈ {−1, +1}^d` of `P (v − c)`,
    //! with `|v − c|²` and `s = |v − c|² / |P (v − c)|₁`. For a query `q`,
    //! `⟨v − c, q − c⟩ ≈ s ⟨b, P (q − c)⟩`, from which the squared Euclidean
    //! distance, the cosine distance (over unit vectors) and the dot product
    //! follow; Manhattan is estimated by the Euclidean distance, which the
    //! exact ranking then corrects. The rotation spreads every vector's
    //! length evenly over the dimensions, so the estimate is unbiased and its
    //! error shrinks as `1/√d`: with probability about 94%, it is within
    //! `1.9 |v − c| |q − c| √(1/⟨b̄, u⟩² − 1) / √(d − 1)`, `u` the unit
    //! residual and `b̄` its normalised signs (RaBitQ's bound, with its
    //! `ε₀ = 1.9`; spinney adds the rounding of the query's 8-bit tables).
    //!
    //! Unless [`QueryBuilder::rerank`](crate::QueryBuilder::rerank) caps it,
    //! a query computes the exact distance of every candidate whose estimate
    //! less its bound is below the `count`-th smallest estimate plus its
    //! bound, nearest lower bound first, and stops as soon as `count` exact
    //! distances beat every remaining lower bound. On the 384-dimension
    //! sentence embeddings of the README, that is about 70 exact distances
    //! per query for ten neighbours, with recall@10 0.997 against an exact
    //! scan. Estimates are computed 32 codes at a time with one byte shuffle
    //! per group of four dimensions (the "fast scan" layout), about a tenth
    //! of the cost of an exact distance at 384 dimensions.
    //!
    //! Below 128 dimensions one bit per dimension estimates too coarsely to
    //! save work, and every candidate is scored exactly.
    //!
    //! # Binary quantization
    //!
    //! [`BinaryQuantizedEuclidean`], [`BinaryQuantizedCosine`],
    //! [`BinaryQuantizedManhattan`] and [`Hamming`] store one bit per dimension,
    //! set when the value is greater than zero: 32 times smaller than `f32`s,
    //! for collections whose vectors would not fit in memory. They suit
    //! embeddings centred on zero; data whose values are all positive (SIFT,
    //! for one) keeps little in the signs.
    //!
    //! **Keeping recall.** Comparing the query's bits with the item's (or a
    //! cosine of 0/1 vectors, which ignores the dimensions where both bits are
    //! clear) throws away most of what the query knows. The binary-quantized
    //! distances keep the query in `f32` and estimate `q · x` from `q · b`, `b`
    //! being the item's bits read as ±1, with the estimator of RaBitQ (Gao &
    //! Long, 2024): `q · x ≈ (q · b) × |x|² / |x|₁`. The item's norm `|x|` and
    //! `|x|₁` are stored beside its bits (8 bytes per item). Euclidean is then
    //! `|q|² − 2 (q · x) + |x|²` and cosine `1 − (q · x) / (|q| |x|)`; Manhattan
    //! compares `q` with `mean × b`, `mean = |x|₁ / dimensions`. `q · b` costs
    //! one table look-up per byte of bits. Results carry these estimates.
    //! [`Hamming`] compares bits with bits, as its users expect. (Ranking
    //! 20,000 embedding-like vectors of 768 dimensions exhaustively, the
    //! estimates found 0.76 of the ten exact Euclidean neighbours, comparing
    //! bits 0.42; the README has the figures with the trees.)
    //!
    //! **Split planes.** Two-means runs on the ±1 vectors, and the plane's
    //! normal is the signs of the two centroids' difference, stored as bits like
    //! the items. The margin of a ±1 vector `b` is then `offset − 2 ×
    //! hamming(normal, b)`: one popcount per word, and a normal as small as an
    //! item. Each split keeps on one side the items within a Hamming radius of
    //! the pattern the two clusters differ by. Queries descend with their own
    //! signs, as the items were placed.
    //!
    //! **Oversampling.** Comparing bits is cheap, so their default
    //! `oversampling` is 4 ([`Distance::DEFAULT_OVERSAMPLING`]).
    //!
    //! [`Distance::DEFAULT_OVERSAMPLING`]: crate::Distance::DEFAULT_OVERSAMPLING

    pub use crate::distance::{
        BinaryQuantizedCosine, BinaryQuantizedEuclidean, BinaryQuantizedManhattan, Cosine, DotProduct, Euclidean,
        Hamming, Manhattan,
    };
}

pub use build::partition_count;
pub use build::{Builder, DEFAULT_TREES_WITH_CODES, MAX_TREES, default_n_trees, default_split_after};
pub use codes::MIN_DIMENSIONS as MIN_CODE_DIMENSIONS;
pub use distance::Distance;
pub use error::Error;
pub use heed;
pub use kernels::implementation as kernel_implementation;
#[doc(hidden)]
pub use kernels::{Kernels, available as available_kernels};
pub use listing::{IndexInfo, indexes};
pub use progress::{MainStep, SubStep, WriterProgress};
pub use reader::{
    DEFAULT_EXACT_BELOW_COUNT, DEFAULT_EXACT_BELOW_RATIO, DEFAULT_SEARCH_K_PER_RESULT, QueryBuilder, QueryStats,
    Reader, Searcher, Stats, TreeStats, default_search_k,
};
pub use store::ItemIter;
pub use version::FORMAT_VERSION;
pub use writer::{MAX_DIMENSIONS, Writer};

/// The id of an item.
pub type ItemId = u32;

/// The result of every fallible operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The LMDB database that holds the indexes, typed with spinney's codecs.
///
/// Create it with heed's own calls (see the quickstart); one database holds
/// up to 65,536 indexes.
pub type Database<'t, D> = heed::Database<'t, format::KeyCodec, format::Entries<D>>;
