//! Choosing a split plane: two-means on the items of a node.
//!
//! The heuristic is Annoy's: start two centroids at two random items, then
//! move the nearer centroid toward each of a few hundred randomly drawn items,
//! weighting each distance by the centroid's count so that neither centroid
//! swallows everything. The plane is then normal to the difference of the
//! centroids (see [`Distance::plane`] for where it sits).

use rand::{Rng, RngExt};

use crate::Distance;
use crate::item::Leaf;
use crate::kernels;
use crate::vector::UnalignedF32;

/// How many items two-means draws per split.
pub(crate) const TWO_MEANS_ITERATIONS: usize = 200;

/// A plane for `items` (positions in `leaves`), or `None` when the two
/// centroids coincide (all the items drawn were equal).
pub(crate) fn two_means_plane<D: Distance, R: Rng>(
    rng: &mut R,
    leaves: &[Leaf<'_, D>],
    items: &[u32],
    context: D::Context,
    point: &mut Vec<f32>,
) -> Option<(Vec<f32>, f32)> {
    let n = items.len();
    debug_assert!(n >= 2);
    let first = rng.random_range(0..n);
    let mut second = rng.random_range(0..n - 1);
    if second >= first {
        second += 1;
    }
    let mut p = Vec::new();
    let mut q = Vec::new();
    D::split_point(&leaves[items[first] as usize], context, &mut p);
    D::split_point(&leaves[items[second] as usize], context, &mut q);
    let (mut p_count, mut q_count) = (1.0f32, 1.0f32);

    for _ in 0..TWO_MEANS_ITERATIONS.min(n.saturating_mul(2)) {
        let drawn = items[rng.random_range(0..n)] as usize;
        D::split_point(&leaves[drawn], context, point);
        let x = UnalignedF32::from_slice(point);
        let to_p = p_count * kernels::l2_squared(UnalignedF32::from_slice(&p), x);
        let to_q = q_count * kernels::l2_squared(UnalignedF32::from_slice(&q), x);
        let (centroid, count) = if to_p < to_q {
            (&mut p, &mut p_count)
        } else if to_q < to_p {
            (&mut q, &mut q_count)
        } else {
            continue;
        };
        // The running mean: c + (x - c) / (count + 1), multiplying by the
        // reciprocal, as a division per value costs more than the distances.
        // (x - c overflows only for values near ±f32::MAX of opposite
        // signs; the plane from such a centroid is `None` or sends every
        // item left, so it is never kept and the node splits at random.)
        let step = 1.0 / (*count + 1.0);
        for (c, x) in centroid.iter_mut().zip(point.iter()) {
            *c += (x - *c) * step;
        }
        *count += 1.0;
    }
    D::plane(&p, &q)
}
