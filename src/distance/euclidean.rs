use super::{Distance, bisecting_plane, copy_point, offset_margin, sealed};
use crate::kernels;
use crate::node::Leaf;
use crate::vector::UnalignedF32;

/// The straight-line (L2) distance. Results carry the true distance.
///
/// Split planes sit halfway between two centroids, with their offset stored,
/// so they need not pass through the origin.
#[derive(Debug, Clone, Copy)]
pub enum Euclidean {}

impl sealed::Sealed for Euclidean {}

impl Distance for Euclidean {
    const NAME: &'static str = "euclidean";
    type Header = ();
    type Context = ();

    fn new_header(_vector: UnalignedF32<'_>) {}

    fn context<'a>(_leaves: impl Iterator<Item = Leaf<'a, Self>>) {}

    fn distance(p: &Leaf<'_, Self>, q: &Leaf<'_, Self>) -> f32 {
        kernels::l2_squared(p.vector, q.vector)
    }

    fn user_distance(distance: f32) -> f32 {
        distance.sqrt()
    }

    fn split_point(leaf: &Leaf<'_, Self>, _context: (), out: &mut Vec<f32>) {
        copy_point(leaf.vector, out);
    }

    fn plane(p: &[f32], q: &[f32]) -> Option<(Vec<f32>, f32)> {
        bisecting_plane(p, q)
    }

    fn margin(normal: UnalignedF32<'_>, offset: f32, query: &Leaf<'_, Self>) -> f32 {
        offset_margin(normal, offset, query.vector)
    }
}
