use bytemuck::{Pod, Zeroable};

use super::{Distance, Machinery, sealed, stored_as_f32, unit_difference};
use crate::codes::CodeSpace;
use crate::half::UnalignedF16;
use crate::item::Leaf;
use crate::kernels;
use crate::vector::UnalignedF32;

/// The cosine distance, `1 - cos(p, q)`, from 0 (same direction) through 1
/// (orthogonal) to 2 (opposite).
///
/// Vectors need not be normalised: each leaf stores its norm. A zero vector
/// is at distance 1 from everything. Split planes pass through the origin.
#[derive(Debug, Clone, Copy)]
pub enum Cosine {}

/// The leaf header of [`Cosine`]: the vector's Euclidean norm.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct NormHeader {
    /// `|v|`.
    pub norm: f32,
}

impl sealed::Sealed for Cosine {}

impl Distance for Cosine {
    const NAME: &'static str = "cosine";
    const QUANTIZED: bool = false;
    const DEFAULT_OVERSAMPLING: usize = 1;
}

impl Machinery for Cosine {
    stored_as_f32!();
    const CODE_SPACE: Option<CodeSpace> = Some(CodeSpace::Cosine);
    type Header = NormHeader;
    type Context = ();

    fn new_header(values: &[f32]) -> NormHeader {
        NormHeader { norm: kernels::norm(UnalignedF32::from_slice(values)) }
    }

    fn context<'a>(_leaves: impl Iterator<Item = Leaf<'a, Self>>) {}

    fn distance(query: &Self::Query, p: &Leaf<'_, Self>) -> f32 {
        let q = query.leaf();
        let norms = p.header.norm * q.header.norm;
        if norms > 0.0 { (1.0 - kernels::dot(p.vector, q.vector) / norms).clamp(0.0, 2.0) } else { 1.0 }
    }

    fn user_distance(distance: f32) -> f32 {
        distance
    }

    fn code_vector(leaf: &Leaf<'_, Self>, out: &mut Vec<f32>) {
        Self::split_point(leaf, (), out);
    }

    fn split_point(leaf: &Leaf<'_, Self>, _context: (), out: &mut Vec<f32>) {
        out.clear();
        let norm = leaf.header.norm;
        let scale = if norm > 0.0 { norm.recip() } else { 0.0 };
        out.extend(leaf.vector.iter().map(|x| x * scale));
    }

    fn plane(p: &[f32], q: &[f32]) -> Option<(Vec<f32>, f32)> {
        Some((unit_difference(p, q)?, 0.0))
    }

    fn margin(normal: UnalignedF16<'_>, _offset: f32, leaf: &Leaf<'_, Self>) -> f32 {
        kernels::dot_f16(normal, leaf.vector)
    }
}
