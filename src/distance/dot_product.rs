use bytemuck::{Pod, Zeroable};

use super::cosine::NormHeader;
use super::{Distance, Machinery, copy_point, sealed, stored_as_f32, unit_difference};
use crate::codes::CodeSpace;
use crate::half::UnalignedF16;
use crate::item::Leaf;
use crate::kernels;
use crate::vector::UnalignedF32;

/// The dot product, for maximum inner product search: larger is closer, and
/// results carry the dot product itself, best first.
///
/// The trees solve an equivalent nearest-neighbour problem: each item gets an
/// extra coordinate `sqrt(M² - |x|²)`, with `M` the largest norm in the
/// index, so that all items have norm `M`, and the query gets a zero there
/// (Bachrach et al., 2014). The extra coordinate is computed while the trees
/// grow, never stored; the split normal's extra coordinate is the stored
/// offset.
#[derive(Debug, Clone, Copy)]
pub enum DotProduct {}

/// The build context of [`DotProduct`]: the largest norm of the index when
/// its forest was first grown. Items added later with a larger norm get a
/// zero extra coordinate; a full rebuild (`clear`, or a new `split_after`)
/// measures the norm again.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(transparent)]
pub struct MaxNorm(f32);

fn extra_coordinate(leaf: &Leaf<'_, DotProduct>, MaxNorm(max): MaxNorm) -> f32 {
    let norm = leaf.header.norm;
    (max * max - norm * norm).max(0.0).sqrt()
}

impl sealed::Sealed for DotProduct {}

impl Distance for DotProduct {
    const NAME: &'static str = "dot-product";
    const QUANTIZED: bool = false;
    const DEFAULT_OVERSAMPLING: usize = 1;
}

impl Machinery for DotProduct {
    stored_as_f32!();
    const CODE_SPACE: Option<CodeSpace> = Some(CodeSpace::Dot);
    type Header = NormHeader;
    type Context = MaxNorm;

    fn new_header(values: &[f32]) -> NormHeader {
        NormHeader { norm: kernels::norm(UnalignedF32::from_slice(values)) }
    }

    fn context<'a>(leaves: impl Iterator<Item = Leaf<'a, Self>>) -> MaxNorm {
        MaxNorm(leaves.map(|leaf| leaf.header.norm).fold(0.0, f32::max))
    }

    fn distance(query: &Self::Query, p: &Leaf<'_, Self>) -> f32 {
        let q = query.leaf();
        -kernels::dot(p.vector, q.vector)
    }

    fn user_distance(distance: f32) -> f32 {
        -distance
    }

    fn code_vector(leaf: &Leaf<'_, Self>, out: &mut Vec<f32>) {
        copy_point(leaf.vector, out);
    }

    fn split_point(leaf: &Leaf<'_, Self>, context: MaxNorm, out: &mut Vec<f32>) {
        out.clear();
        let MaxNorm(max) = context;
        let scale = if max > 0.0 { max.recip() } else { 0.0 };
        out.extend(leaf.vector.iter().map(|x| x * scale));
        out.push(extra_coordinate(leaf, context) * scale);
    }

    fn plane(p: &[f32], q: &[f32]) -> Option<(Vec<f32>, f32)> {
        let mut normal = unit_difference(p, q)?;
        let extra = normal.pop()?;
        Some((normal, extra))
    }

    fn margin(normal: UnalignedF16<'_>, _offset: f32, leaf: &Leaf<'_, Self>) -> f32 {
        kernels::dot_f16(normal, leaf.vector)
    }

    fn item_margin(normal: UnalignedF16<'_>, offset: f32, leaf: &Leaf<'_, Self>, context: MaxNorm) -> f32 {
        kernels::dot_f16(normal, leaf.vector) + offset * extra_coordinate(leaf, context)
    }
}
