use super::{Distance, Machinery, bisecting_plane, copy_point, offset_margin, sealed, stored_as_f32};
use crate::codes::CodeSpace;
use crate::half::UnalignedF16;
use crate::item::Leaf;
use crate::kernels;

/// The straight-line (L2) distance. Results carry the true distance.
///
/// Split planes sit halfway between two centroids, with their offset stored,
/// so they need not pass through the origin.
#[derive(Debug, Clone, Copy)]
pub enum Euclidean {}

impl sealed::Sealed for Euclidean {}

impl Distance for Euclidean {
    const NAME: &'static str = "euclidean";
    const QUANTIZED: bool = false;
    const DEFAULT_OVERSAMPLING: usize = 1;
}

impl Machinery for Euclidean {
    stored_as_f32!();
    const CODE_SPACE: Option<CodeSpace> = Some(CodeSpace::Euclidean);
    type Header = ();
    type Context = ();

    fn new_header(_values: &[f32]) {}

    fn context<'a>(_leaves: impl Iterator<Item = Leaf<'a, Self>>) {}

    fn distance(query: &Self::Query, p: &Leaf<'_, Self>) -> f32 {
        let q = query.leaf();
        kernels::l2_squared(p.vector, q.vector)
    }

    fn user_distance(distance: f32) -> f32 {
        distance.sqrt()
    }

    fn code_vector(leaf: &Leaf<'_, Self>, out: &mut Vec<f32>) {
        copy_point(leaf.vector, out);
    }

    fn split_point(leaf: &Leaf<'_, Self>, _context: (), out: &mut Vec<f32>) {
        copy_point(leaf.vector, out);
    }

    fn plane(p: &[f32], q: &[f32]) -> Option<(Vec<f32>, f32)> {
        bisecting_plane(p, q)
    }

    fn margin(normal: UnalignedF16<'_>, offset: f32, leaf: &Leaf<'_, Self>) -> f32 {
        offset_margin(normal, offset, leaf.vector)
    }
}
