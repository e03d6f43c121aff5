//! Growing a tree, or a subtree, depth first, into a temporary node file.

use std::borrow::Cow;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use roaring::RoaringBitmap;

use super::frozen::FrozenItems;
use super::split::two_means_plane;
use super::tmp_nodes::TmpNodes;
use crate::error::Error;
use crate::node::{Descendants, Node, SplitPlaneNormal};
use crate::vector::VectorCodec;
use crate::{Distance, Result};

/// A split is retried when its larger side holds more than this share of the
/// items, and an updated split whose larger side passes it is regrown.
pub(crate) const MAX_IMBALANCE: f64 = 0.95;
/// Planes tried before falling back to a random split.
pub(crate) const PLANE_ATTEMPTS: usize = 3;

/// What every tree of a build shares.
pub(crate) struct GrowParams<'f, D: Distance> {
    pub context: D::Context,
    pub split_after: usize,
    pub cancel: &'f (dyn Fn() -> bool + Sync + Send),
}

impl<D: Distance> GrowParams<'_, D> {
    pub fn check_cancel(&self) -> Result<()> {
        if (self.cancel)() { Err(Error::BuildCancelled) } else { Ok(()) }
    }

    /// Whether a split with sides of `left` and `right` items is too lopsided.
    pub fn unbalanced(&self, left: u64, right: u64) -> bool {
        left.max(right) as f64 > MAX_IMBALANCE * (left + right) as f64
    }
}

/// The random stream of tree number `tree` in a build seeded with `seed`:
/// the trees do not depend on which thread grows them.
pub(crate) fn tree_rng(seed: u64, tree: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(tree);
    rng
}

/// Grows a subtree over every item of `frozen` into `nodes`; returns the
/// local id of its root.
pub(crate) fn grow<D: Distance>(
    params: &GrowParams<'_, D>,
    frozen: &FrozenItems<'_, D>,
    rng: &mut ChaCha8Rng,
    nodes: &mut TmpNodes,
) -> Result<u32> {
    let n = u32::try_from(frozen.len()).map_err(|_| Error::TooManyNodes)?;
    let mut items: Vec<u32> = (0..n).collect();
    let mut grower = Grower { params, frozen, rng, nodes, sides: Vec::new(), point: Vec::new() };
    grower.grow(&mut items)
}

struct Grower<'g, 'f, 't, D: Distance> {
    params: &'g GrowParams<'f, D>,
    frozen: &'g FrozenItems<'t, D>,
    rng: &'g mut ChaCha8Rng,
    nodes: &'g mut TmpNodes,
    /// Scratch: which side each item of the node being split goes to.
    sides: Vec<bool>,
    /// Scratch for two-means.
    point: Vec<f32>,
}

impl<D: Distance> Grower<'_, '_, '_, D> {
    /// Writes the subtree of `items` (positions in the frozen items, reordered
    /// in place) and returns the local id of its root.
    fn grow(&mut self, items: &mut [u32]) -> Result<u32> {
        self.params.check_cancel()?;
        if items.len() <= self.params.split_after.max(1) {
            let ids = &self.frozen.ids;
            let bucket: RoaringBitmap = items.iter().map(|&i| ids[i as usize]).collect();
            return self.nodes.push::<D>(&Node::Descendants(Descendants { items: Cow::Owned(bucket) }));
        }

        let (normal, offset, mid) = match self.plane_split(items) {
            Some((normal, offset, mid)) => (normal, offset, mid),
            None => {
                // Equal vectors, or no plane that separates them: split at random
                // and store no normal, so a query explores both sides alike.
                items.shuffle(self.rng);
                (D::NormalCodec::encode(&[]), 0.0, items.len() / 2)
            }
        };
        let (left, right) = items.split_at_mut(mid);
        let (left_count, right_count) = (left.len() as u32, right.len() as u32);
        let left = self.grow(left)?;
        let right = self.grow(right)?;
        let normal = D::NormalCodec::borrow(&normal);
        let split = SplitPlaneNormal { left, right, left_count, right_count, offset, normal };
        self.nodes.push::<D>(&Node::SplitPlaneNormal(split))
    }

    /// Tries a few two-means planes; on the first balanced one, moves the
    /// left side to the front of `items` and returns the plane and the
    /// number of items on the left.
    fn plane_split(&mut self, items: &mut [u32]) -> Option<(<D::NormalCodec as VectorCodec>::Owned, f32, usize)> {
        let leaves = &self.frozen.leaves;
        let context = self.params.context;
        for _ in 0..PLANE_ATTEMPTS {
            let Some((normal, offset)) = two_means_plane(self.rng, leaves, items, context, &mut self.point) else {
                continue;
            };
            let normal = D::NormalCodec::encode(&normal);
            let plane = D::NormalCodec::borrow(&normal);
            self.sides.clear();
            for &item in items.iter() {
                let margin = D::item_margin(plane, offset, &leaves[item as usize], context);
                self.sides.push(side(margin, self.rng));
            }
            let n_right = self.sides.iter().filter(|&&right| right).count();
            if n_right == 0 || self.params.unbalanced(n_right as u64, (items.len() - n_right) as u64) {
                continue;
            }
            let mut n_left = 0;
            for i in 0..items.len() {
                if !self.sides[i] {
                    items.swap(i, n_left);
                    n_left += 1;
                }
            }
            return Some((normal, offset, n_left));
        }
        None
    }
}

/// The side an item with `margin` goes to: right when positive, left when
/// negative, at random on the plane.
pub(crate) fn side(margin: f32, rng: &mut ChaCha8Rng) -> bool {
    if margin == 0.0 { rng.random() } else { margin > 0.0 }
}
