//! The [`Distance`] trait and the distances spinney ships.
//!
//! A distance decides three things: how a leaf is stored (its header), how
//! two vectors compare, and how a set of vectors is split in two by a
//! hyperplane while the trees grow. The trait is sealed: the on-disk format
//! depends on each implementation, so only this crate provides them.

use std::fmt;

use bytemuck::Pod;

use crate::node::Leaf;
use crate::vector::UnalignedF32;

mod cosine;
mod dot_product;
mod euclidean;
mod manhattan;

pub use cosine::Cosine;
pub use dot_product::DotProduct;
pub use euclidean::Euclidean;
pub use manhattan::Manhattan;

pub(crate) mod sealed {
    /// Keeps [`super::Distance`] implementable by this crate only.
    pub trait Sealed {}
}

/// A way to measure how far apart two vectors are, and to split vectors by a
/// hyperplane consistently with it.
///
/// Pick one of [`crate::distances`]; the name of the distance is stored with
/// the index, and opening an index with another distance is an error.
pub trait Distance: sealed::Sealed + Send + Sync + Sized + Copy + fmt::Debug + 'static {
    /// The name stored in the index metadata.
    const NAME: &'static str;

    /// Per-vector data stored in front of each leaf vector.
    #[doc(hidden)]
    type Header: Pod + fmt::Debug + PartialEq + Send + Sync;

    /// Data computed over all the items when the forest is first grown,
    /// stored in the metadata and reused by incremental builds, so that an
    /// item always descends the trees the same way.
    #[doc(hidden)]
    type Context: Pod + fmt::Debug + Send + Sync;

    /// Computes the header of a new vector.
    #[doc(hidden)]
    fn new_header(vector: UnalignedF32<'_>) -> Self::Header;

    /// Computes the build context from every leaf of the index.
    #[doc(hidden)]
    fn context<'a>(leaves: impl Iterator<Item = Leaf<'a, Self>>) -> Self::Context;

    /// The internal distance: smaller is closer, and its order is the order of
    /// [`Distance::user_distance`]'s (larger is closer for the dot product).
    #[doc(hidden)]
    fn distance(p: &Leaf<'_, Self>, q: &Leaf<'_, Self>) -> f32;

    /// The distance returned to users, from the internal one.
    #[doc(hidden)]
    fn user_distance(distance: f32) -> f32;

    /// Writes the coordinates in which two-means clusters this leaf.
    #[doc(hidden)]
    fn split_point(leaf: &Leaf<'_, Self>, context: Self::Context, out: &mut Vec<f32>);

    /// Turns two centroids (in split coordinates) into a plane: the normal and
    /// the offset. `None` when the centroids coincide.
    #[doc(hidden)]
    fn plane(p: &[f32], q: &[f32]) -> Option<(Vec<f32>, f32)>;

    /// The signed margin of a query to a plane: positive goes right.
    #[doc(hidden)]
    fn margin(normal: UnalignedF32<'_>, offset: f32, query: &Leaf<'_, Self>) -> f32;

    /// The signed margin of a stored item to a plane while the trees grow.
    #[doc(hidden)]
    fn item_margin(normal: UnalignedF32<'_>, offset: f32, leaf: &Leaf<'_, Self>, context: Self::Context) -> f32 {
        let _ = context;
        Self::margin(normal, offset, leaf)
    }
}

/// The split coordinates of the distances that split vectors as they are.
pub(crate) fn copy_point(vector: UnalignedF32<'_>, out: &mut Vec<f32>) {
    out.clear();
    out.extend(vector.iter());
}

/// The margin to a plane that need not pass through the origin.
pub(crate) fn offset_margin(normal: UnalignedF32<'_>, offset: f32, vector: UnalignedF32<'_>) -> f32 {
    crate::kernels::dot(normal, vector) + offset
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
/// distances whose planes need not pass through the origin.
pub(crate) fn bisecting_plane(p: &[f32], q: &[f32]) -> Option<(Vec<f32>, f32)> {
    let normal = unit_difference(p, q)?;
    let midpoint: f32 = normal.iter().zip(p.iter().zip(q)).map(|(n, (p, q))| n * (p + q) / 2.0).sum();
    Some((normal, -midpoint))
}
