//! Growing one tree, depth first, into its temporary file.

use std::borrow::Cow;
use std::path::Path;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use roaring::RoaringBitmap;

use super::frozen::FrozenItems;
use super::split::two_means_plane;
use super::tmp_nodes::{TmpNodes, TreeNodes};
use crate::error::Error;
use crate::node::{Descendants, Node, SplitPlaneNormal};
use crate::vector::UnalignedF32;
use crate::{Distance, Result};

/// A split is retried when its larger side holds more than this share of the items.
pub(crate) const MAX_IMBALANCE: f64 = 0.95;
/// Planes tried before falling back to a random split.
pub(crate) const PLANE_ATTEMPTS: usize = 3;

/// What every tree of a build shares.
pub(crate) struct GrowContext<'f, 't, D: Distance> {
    pub frozen: &'f FrozenItems<'t, D>,
    pub context: D::Context,
    pub split_after: usize,
    pub seed: u64,
    pub tmpdir: Option<&'f Path>,
    pub cancel: &'f (dyn Fn() -> bool + Sync + Send),
}

/// Grows tree number `tree` over every item. Its randomness comes from
/// `(seed, tree)` only, so the result does not depend on the thread.
pub(crate) fn grow_tree<D: Distance>(shared: &GrowContext<'_, '_, D>, tree: u64) -> Result<TreeNodes> {
    let mut rng = ChaCha8Rng::seed_from_u64(shared.seed);
    rng.set_stream(tree);
    let n = u32::try_from(shared.frozen.len()).map_err(|_| Error::TooManyNodes)?;
    let mut items: Vec<u32> = (0..n).collect();
    let mut grower = Grower { shared, rng, nodes: TmpNodes::new(shared.tmpdir)?, sides: Vec::new(), point: Vec::new() };
    let root = grower.grow(&mut items)?;
    grower.nodes.finish(root)
}

struct Grower<'s, 'f, 't, D: Distance> {
    shared: &'s GrowContext<'f, 't, D>,
    rng: ChaCha8Rng,
    nodes: TmpNodes,
    /// Scratch: which side each item of the node being split goes to.
    sides: Vec<bool>,
    /// Scratch for two-means.
    point: Vec<f32>,
}

impl<D: Distance> Grower<'_, '_, '_, D> {
    /// Writes the subtree of `items` (positions in the frozen items, reordered
    /// in place) and returns the local id of its root.
    fn grow(&mut self, items: &mut [u32]) -> Result<u32> {
        if (self.shared.cancel)() {
            return Err(Error::BuildCancelled);
        }
        if items.len() <= self.shared.split_after.max(1) {
            let ids = &self.shared.frozen.ids;
            let bucket: RoaringBitmap = items.iter().map(|&i| ids[i as usize]).collect();
            return self.nodes.push::<D>(&Node::Descendants(Descendants { items: Cow::Owned(bucket) }));
        }

        let (normal, offset, mid) = match self.plane_split(items) {
            Some((normal, offset, mid)) => (normal, offset, mid),
            None => {
                // Equal vectors, or no plane that separates them: split at random
                // and store no normal, so a query explores both sides alike.
                items.shuffle(&mut self.rng);
                (Vec::new(), 0.0, items.len() / 2)
            }
        };
        let (left, right) = items.split_at_mut(mid);
        let left = self.grow(left)?;
        let right = self.grow(right)?;
        let normal = UnalignedF32::from_slice(&normal);
        self.nodes.push::<D>(&Node::SplitPlaneNormal(SplitPlaneNormal { left, right, offset, normal }))
    }

    /// Tries a few two-means planes; on the first balanced one, moves the
    /// left side to the front of `items` and returns the plane and the
    /// number of items on the left.
    fn plane_split(&mut self, items: &mut [u32]) -> Option<(Vec<f32>, f32, usize)> {
        let leaves = &self.shared.frozen.leaves;
        let context = self.shared.context;
        for _ in 0..PLANE_ATTEMPTS {
            let Some((normal, offset)) = two_means_plane(&mut self.rng, leaves, items, context, &mut self.point) else {
                continue;
            };
            let plane = UnalignedF32::from_slice(&normal);
            self.sides.clear();
            for &item in items.iter() {
                let margin = D::item_margin(plane, offset, &leaves[item as usize], context);
                let right = if margin == 0.0 { self.rng.random() } else { margin > 0.0 };
                self.sides.push(right);
            }
            let n_right = self.sides.iter().filter(|&&right| right).count();
            let larger = n_right.max(items.len() - n_right);
            if n_right == 0 || larger as f64 > MAX_IMBALANCE * items.len() as f64 {
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
