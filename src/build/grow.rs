//! Growing a tree, or a subtree, depth first, into a tree file.

use rand::rngs::ChaCha8Rng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

use super::frozen::FrozenItems;
use super::split::two_means_plane;
use crate::distance::Machinery;
use crate::error::Error;
use crate::layout::TreeFile;
use crate::vector::VectorCodec;
use crate::{Distance, Result};

/// A split is retried when its larger side holds more than this share of the
/// items, and an updated split whose larger side passes it is regrown.
pub(crate) const MAX_IMBALANCE: f64 = 0.95;
/// A subtree whose vectors take at most this many bytes is grown over a
/// packed copy of them, which stays in a last-level cache shared by two
/// threads...
pub(crate) const PACKED_BYTES: usize = 4 << 20;
/// ...when the vectors of all the items take more than this many bytes;
/// below, they all stay in cache where they are, and the copy would only
/// cost time and memory.
pub(crate) const PACK_ABOVE_BYTES: usize = 4 * PACKED_BYTES;
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
/// address of its root.
pub(crate) fn grow<D: Distance>(
    params: &GrowParams<'_, D>,
    frozen: &FrozenItems<'_, D>,
    rng: &mut ChaCha8Rng,
    nodes: &mut TreeFile,
) -> Result<u32> {
    let n = u32::try_from(frozen.len()).map_err(|_| Error::TooManyNodes)?;
    let mut items: Vec<u32> = (0..n).collect();
    Grower::new(params, frozen, rng, nodes).grow(&mut items)
}

/// A plane: its normal, in the distance's normal codec, and its offset.
pub(crate) type Plane<D> = (<<D as Machinery>::NormalCodec as VectorCodec>::Owned, f32);

/// Grows the nodes of one tree.
pub(crate) struct Grower<'g, 'f, 't, D: Distance> {
    params: &'g GrowParams<'f, D>,
    frozen: &'g FrozenItems<'t, D>,
    rng: &'g mut ChaCha8Rng,
    nodes: &'g mut TreeFile,
    /// Scratch: the slots of a bucket.
    bucket: Vec<u32>,
    /// Scratch: which side each item of the node being split goes to.
    sides: Vec<bool>,
    /// Scratch for two-means.
    point: Vec<f32>,
    /// Scratch: the vectors of a subtree, packed (see [`Self::grow_packed`]);
    /// `None` when `frozen` is itself such a copy, or while one is grown.
    packed: Option<Vec<u8>>,
}

impl<'g, 'f, 't, D: Distance> Grower<'g, 'f, 't, D> {
    pub fn new(
        params: &'g GrowParams<'f, D>,
        frozen: &'g FrozenItems<'t, D>,
        rng: &'g mut ChaCha8Rng,
        nodes: &'g mut TreeFile,
    ) -> Grower<'g, 'f, 't, D> {
        let (sides, point, bucket) = (Vec::new(), Vec::new(), Vec::new());
        Grower { params, frozen, rng, nodes, bucket, sides, point, packed: Some(Vec::new()) }
    }

    /// Writes a split with `plane` over the subtrees at `left` and `right`;
    /// returns its address.
    pub fn push_split(&mut self, left: u32, right: u32, (normal, offset): &Plane<D>) -> Result<u32> {
        self.nodes.push_split(left, right, *offset, D::NormalCodec::as_bytes(D::NormalCodec::borrow(normal)))
    }

    /// Writes the subtree of `items` (positions in the frozen items, reordered
    /// in place) and returns the address of its root.
    pub fn grow(&mut self, items: &mut [u32]) -> Result<u32> {
        self.params.check_cancel()?;
        if items.len() <= self.params.split_after.max(1) {
            let slots = &self.frozen.slots;
            self.bucket.clear();
            self.bucket.extend(items.iter().map(|&i| slots[i as usize]));
            return self.nodes.push_bucket(&mut self.bucket);
        }
        let vector_bytes = self.frozen.vector_bytes();
        if self.packed.is_some()
            && self.frozen.len().saturating_mul(vector_bytes) > PACK_ABOVE_BYTES
            && items.len().saturating_mul(vector_bytes) <= PACKED_BYTES
        {
            return self.grow_packed(items);
        }

        let (plane, mid) = self.split(items);
        let (left, right) = items.split_at_mut(mid);
        let left = self.grow(left)?;
        let right = self.grow(right)?;
        self.push_split(left, right, &plane)
    }

    /// Grows the subtree of `items` as [`Self::grow`] does (the same nodes)
    /// over a copy of their vectors packed together, which stays in cache,
    /// rather than over pages scattered through the whole index.
    fn grow_packed(&mut self, items: &mut [u32]) -> Result<u32> {
        // Taken out so that the subtree never packs again.
        let mut buffer = self.packed.take().unwrap_or_default();
        let grown = match self.frozen.packed(items, &mut buffer) {
            Some(packed) => {
                let mut local: Vec<u32> = (0..items.len() as u32).collect();
                let mut grower = Grower::new(self.params, &packed, self.rng, self.nodes);
                grower.packed = None;
                grower.grow(&mut local)
            }
            None => self.grow(items),
        };
        self.packed = Some(buffer);
        grown
    }

    /// Splits `items`: moves the left side to the front and returns the
    /// plane and the number of items on the left. Tries a few two-means
    /// planes, and splits at random, with an empty normal, when none is
    /// balanced (equal vectors, or no plane that separates them), so that a
    /// query explores both sides alike.
    pub fn split(&mut self, items: &mut [u32]) -> (Plane<D>, usize) {
        let (frozen, context) = (self.frozen, self.params.context);
        for _ in 0..PLANE_ATTEMPTS {
            let Some((normal, offset)) = self.plane(items) else {
                continue;
            };
            let plane = D::NormalCodec::borrow(&normal);
            let margin = |item: u32| D::item_margin(plane, offset, &frozen.leaves[item as usize], context);
            if let Some(n_left) = self.partition(items, margin) {
                return ((normal, offset), n_left);
            }
        }
        items.shuffle(self.rng);
        ((D::NormalCodec::encode(&[]), 0.0), items.len() / 2)
    }

    /// Moves the items whose `margin` puts them on the left side (see
    /// [`side`]) to the front of `items` and returns how many there are, or
    /// `None`, leaving `items` as they were, when the split is too lopsided.
    pub fn partition(&mut self, items: &mut [u32], mut margin: impl FnMut(u32) -> f32) -> Option<usize> {
        self.sides.clear();
        for &item in items.iter() {
            self.sides.push(side(margin(item), self.rng));
        }
        let n_right = self.sides.iter().filter(|&&right| right).count();
        if n_right == 0 || self.params.unbalanced(n_right as u64, (items.len() - n_right) as u64) {
            return None;
        }
        let mut n_left = 0;
        for i in 0..items.len() {
            if !self.sides[i] {
                items.swap(i, n_left);
                n_left += 1;
            }
        }
        Some(n_left)
    }

    /// A two-means plane for `items`, or `None` when the centroids coincide.
    pub fn plane(&mut self, items: &[u32]) -> Option<Plane<D>> {
        let (normal, offset) =
            two_means_plane(self.rng, &self.frozen.leaves, items, self.params.context, &mut self.point)?;
        Some((D::NormalCodec::encode(&normal), offset))
    }
}

/// The side an item with `margin` goes to: right when positive, left when
/// negative, at random on the plane.
pub(crate) fn side(margin: f32, rng: &mut ChaCha8Rng) -> bool {
    if margin == 0.0 { rng.random() } else { margin > 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distances::Euclidean;
    use crate::item::Leaf;
    use crate::vector::UnalignedF32;

    /// The nodes of one tree grown over `frozen`, packed or in place.
    fn tree_bytes(frozen: &FrozenItems<'_, Euclidean>, packed: bool) -> (u32, Vec<u8>) {
        let params = GrowParams { context: (), split_after: 7, cancel: &|| false };
        let mut rng = tree_rng(5, 0);
        let mut nodes = TreeFile::new(None, 10);
        let mut grower = Grower::new(&params, frozen, &mut rng, &mut nodes);
        let mut items: Vec<u32> = (0..frozen.len() as u32).collect();
        let root = match packed {
            true => grower.grow_packed(&mut items).unwrap(),
            false => {
                grower.packed = None;
                grower.grow(&mut items).unwrap()
            }
        };
        let mut tree = nodes.finish(root).unwrap();
        (root, tree.chunks.read().unwrap().0)
    }

    #[test]
    fn a_packed_copy_grows_the_same_nodes() {
        // Slots with gaps, and vectors with ties, so slots and positions differ.
        let vectors: Vec<[f32; 5]> = (0..400u32)
            .map(|i| [(i % 13) as f32, (i % 7) as f32, (i / 50) as f32, 1.0, (i % 3) as f32 - 1.0])
            .collect();
        let leaves = vectors.iter().map(|v| Leaf { header: (), vector: UnalignedF32::from_slice(v) }).collect();
        let frozen = FrozenItems::<Euclidean> { slots: (0..400).map(|i| 3 * i + 1).collect(), leaves };
        let in_place = tree_bytes(&frozen, false);
        assert!(in_place.1.len() > 400, "a tree of many nodes");
        assert_eq!(tree_bytes(&frozen, true), in_place);
    }
}
