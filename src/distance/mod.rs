//! The [`Distance`] trait and the distances spinney ships.
//!
//! A distance decides four things: how a leaf is stored (its codec and
//! header), how a query compares with a stored vector, how a set of stored
//! vectors is split in two by a hyperplane while the trees grow, and how a
//! query descends those planes. The trait is sealed: the on-disk format
//! depends on each implementation, so only this crate provides them.
//!
//! The `f32` distances store vectors as they are. The binary-quantized ones
//! (`binary.rs`) store one bit per dimension and compare an `f32` query with
//! the bits (an asymmetric distance).

use std::fmt;

use bytemuck::Pod;

use crate::codes::CodeSpace;
use crate::half::UnalignedF16;
use crate::item::Leaf;
use crate::vector::{F32, UnalignedF32, VectorCodec};

mod binary;
mod cosine;
mod dot_product;
mod euclidean;
mod manhattan;

pub use binary::{
    BinaryQuantizedCosine, BinaryQuantizedEuclidean, BinaryQuantizedManhattan, BinaryQuery, Hamming, ScaleHeader,
};
pub use cosine::{Cosine, NormHeader};
pub use dot_product::{DotProduct, MaxNorm};
pub use euclidean::Euclidean;
pub use manhattan::Manhattan;

pub(crate) mod sealed {
    /// Keeps [`super::Distance`] implementable by this crate only: users
    /// can name [`super::Machinery`] but not this.
    #[allow(unnameable_types)]
    pub trait Sealed {}
}

/// A stored vector of the distance `D`, borrowed.
pub type Vector<'a, D> = <<D as Machinery>::Codec as VectorCodec>::View<'a>;

/// A stored split normal of the distance `D`, borrowed.
pub type Normal<'a, D> = <<D as Machinery>::NormalCodec as VectorCodec>::View<'a>;

/// A way to measure how far apart two vectors are, and to split vectors by a
/// hyperplane consistently with it.
///
/// Pick one of [`crate::distances`]; the name of the distance is stored with
/// the index, and opening an index with another distance is an error.
pub trait Distance: Machinery {
    /// The name stored in the index metadata.
    const NAME: &'static str;

    /// Whether the stored vectors lose information: such an index cannot
    /// give the `f32` values back, so it cannot change to another distance.
    const QUANTIZED: bool;

    /// The default multiplier of `search_k` (see
    /// [`crate::QueryBuilder::oversampling`]).
    const DEFAULT_OVERSAMPLING: usize;
}

/// What a distance does inside the index: how it stores vectors and
/// normals, compares a query with an item, splits items by planes and
/// estimates from codes. Not an API: it changes with the format, and only
/// this crate's distances implement it (it is sealed).
pub trait Machinery: sealed::Sealed + Send + Sync + Sized + Copy + fmt::Debug + 'static {
    /// How codes estimate this distance before the exact ranking: `None`
    /// for the distances over bits, whose vectors are their own codes.
    const CODE_SPACE: Option<CodeSpace>;

    /// How vectors are stored.
    type Codec: VectorCodec;

    /// How split normals are stored.
    type NormalCodec: VectorCodec;

    /// Per-vector data stored in front of each leaf vector.
    type Header: Pod + fmt::Debug + PartialEq + Send + Sync;

    /// Data computed over all the items when the forest is first grown,
    /// stored in the metadata and reused by incremental builds, so that an
    /// item always descends the trees the same way.
    type Context: Pod + fmt::Debug + Send + Sync;

    /// A query prepared for comparisons with many stored vectors.
    type Query: Send + Sync;

    /// Computes the header of a new vector.
    fn new_header(values: &[f32]) -> Self::Header;

    /// Computes the build context from every leaf of the index.
    fn context<'a>(leaves: impl Iterator<Item = Leaf<'a, Self>>) -> Self::Context;

    /// The values a user reads back for a stored vector: the vector itself,
    /// or the ±1 (0/1 for Hamming) values of its bits, `dimensions` long.
    fn values(leaf: &Leaf<'_, Self>, dimensions: usize) -> Vec<f32>;

    /// Prepares a query vector.
    fn query(values: &[f32]) -> Self::Query;

    /// Prepares the stored vector of an item as a query.
    fn item_query(leaf: &Leaf<'_, Self>, dimensions: usize) -> Self::Query {
        Self::query(&Self::values(leaf, dimensions))
    }

    /// The query as a leaf, to descend the split planes with.
    fn query_leaf(query: &Self::Query) -> Leaf<'_, Self>;

    /// The internal distance from a query to a stored vector: smaller is
    /// closer, and its order is the order of [`Machinery::user_distance`]'s
    /// (larger is closer for the dot product).
    fn distance(query: &Self::Query, item: &Leaf<'_, Self>) -> f32;

    /// The distance returned to users, from the internal one.
    fn user_distance(distance: f32) -> f32;

    /// Writes the vector a leaf's code encodes: the vector, or its
    /// direction for cosine (see [`Machinery::CODE_SPACE`]).
    fn code_vector(leaf: &Leaf<'_, Self>, out: &mut Vec<f32>) {
        let _ = leaf;
        out.clear();
    }

    /// Writes the coordinates in which two-means clusters this leaf.
    fn split_point(leaf: &Leaf<'_, Self>, context: Self::Context, out: &mut Vec<f32>);

    /// Turns two centroids (in split coordinates) into a plane: the normal
    /// (encoded by the codec) and the offset. `None` when the centroids
    /// coincide.
    fn plane(p: &[f32], q: &[f32]) -> Option<(Vec<f32>, f32)>;

    /// The signed margin of a leaf (or a query's leaf) to a plane: positive
    /// goes right.
    fn margin(normal: Normal<'_, Self>, offset: f32, leaf: &Leaf<'_, Self>) -> f32;

    /// The signed margin of a stored item to a plane while the trees grow.
    fn item_margin(normal: Normal<'_, Self>, offset: f32, leaf: &Leaf<'_, Self>, context: Self::Context) -> f32 {
        let _ = context;
        Self::margin(normal, offset, leaf)
    }
}

/// The items shared by the distances that store `f32`s as they are: the
/// codec, the query (the vector itself) and the values read back.
macro_rules! stored_as_f32 {
    () => {
        type Codec = crate::vector::F32;
        type NormalCodec = crate::half::F16;
        type Query = super::ExactQuery<Self>;

        fn values(leaf: &Leaf<'_, Self>, _dimensions: usize) -> Vec<f32> {
            leaf.vector.to_vec()
        }

        fn query(values: &[f32]) -> Self::Query {
            super::ExactQuery::new(values)
        }

        fn query_leaf(query: &Self::Query) -> Leaf<'_, Self> {
            query.leaf()
        }
    };
}
use stored_as_f32;

/// A query of an `f32` distance: the vector and its header, as if stored.
#[doc(hidden)]
#[derive(Debug)]
pub struct ExactQuery<D: Distance> {
    header: D::Header,
    values: Vec<f32>,
}

impl<D: Distance<Codec = F32>> ExactQuery<D> {
    pub(crate) fn new(values: &[f32]) -> ExactQuery<D> {
        ExactQuery { header: D::new_header(values), values: values.to_vec() }
    }

    pub(crate) fn leaf(&self) -> Leaf<'_, D> {
        Leaf { header: self.header, vector: UnalignedF32::from_slice(&self.values) }
    }
}

/// The split coordinates of the distances that split vectors as they are.
pub(crate) fn copy_point(vector: UnalignedF32<'_>, out: &mut Vec<f32>) {
    out.clear();
    out.extend(vector.iter());
}

/// The margin to a plane that need not pass through the origin.
pub(crate) fn offset_margin(normal: UnalignedF16<'_>, offset: f32, vector: UnalignedF32<'_>) -> f32 {
    crate::kernels::dot_f16(normal, vector) + offset
}

/// The unit normal along `p - q`, or `None` when they coincide.
pub(crate) fn unit_difference(p: &[f32], q: &[f32]) -> Option<Vec<f32>> {
    let mut normal: Vec<f32> = p.iter().zip(q).map(|(p, q)| p - q).collect();
    let norm = crate::kernels::norm(UnalignedF32::from_slice(&normal));
    if norm.is_finite() && norm > 0.0 {
        normal.iter_mut().for_each(|x| *x /= norm);
        Some(normal)
    } else {
        None
    }
}

/// The plane halfway between `p` and `q`, normal to `p - q`, for the
/// distances whose planes need not pass through the origin. The normal is
/// rounded to half precision, as it is stored, before the offset is
/// computed from it: the stored plane then passes through the midpoint
/// however far from the origin the data lies.
pub(crate) fn bisecting_plane(p: &[f32], q: &[f32]) -> Option<(Vec<f32>, f32)> {
    let normal: Vec<f32> = unit_difference(p, q)?.into_iter().map(crate::half::round_to_f16).collect();
    let midpoint: f32 = normal.iter().zip(p.iter().zip(q)).map(|(n, (p, q))| n * (p + q) / 2.0).sum();
    Some((normal, -midpoint))
}
