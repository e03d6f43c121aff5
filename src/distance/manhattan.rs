use super::{Distance, Machinery, bisecting_plane, copy_point, offset_margin, sealed, stored_as_f32};
use crate::codes::CodeSpace;
use crate::half::UnalignedF16;
use crate::item::Leaf;
use crate::kernels;

/// The taxicab (L1) distance: the sum of the absolute differences. Results
/// carry the true distance.
///
/// Splits are the same offset hyperplanes as [`super::Euclidean`]'s: a plane
/// halfway between two centroids separates L1 neighbourhoods well enough for
/// the trees, and the final ranking uses the exact L1 distance.
#[derive(Debug, Clone, Copy)]
pub enum Manhattan {}

impl sealed::Sealed for Manhattan {}

impl Distance for Manhattan {
    const NAME: &'static str = "manhattan";
    const QUANTIZED: bool = false;
    const DEFAULT_OVERSAMPLING: usize = 1;
}

impl Machinery for Manhattan {
    stored_as_f32!();
    const CODE_SPACE: Option<CodeSpace> = Some(CodeSpace::Euclidean);
    type Header = ();
    type Context = ();

    fn new_header(_values: &[f32]) {}

    fn context<'a>(_leaves: impl Iterator<Item = Leaf<'a, Self>>) {}

    fn distance(query: &Self::Query, p: &Leaf<'_, Self>) -> f32 {
        let q = query.leaf();
        kernels::l1(p.vector, q.vector)
    }

    fn user_distance(distance: f32) -> f32 {
        distance
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
