//! Growing a batch of trees whose top levels are split in shared passes.
//!
//! Near its root a tree's nodes hold more vectors than the CPU caches do,
//! and a tree grown on its own reads each of them from memory once per
//! level: with many trees of large vectors the build waits on memory, not on
//! arithmetic. So the trees of a batch split their large nodes together, one
//! level at a time: each tree draws the planes of its nodes of that level
//! (two-means on samples, as always), then a single pass, parallel over the
//! items, reads each vector once and computes its margin against the plane
//! of its node in every tree. Below [`SHARED_BYTES`] of vectors a node fits
//! in cache, and each tree grows it depth first on its own (`grow.rs`), in
//! parallel with the other trees.
//!
//! The trees depend on the seed alone: each tree draws its planes and breaks
//! its ties from its own stream, in an order no thread decides.

use std::ops::Range;

use rayon::prelude::*;

use super::frozen::FrozenItems;
use super::grow::{GrowParams, Grower, PACKED_BYTES, Plane};
use crate::distance::Normal;
use crate::error::Error;
use crate::vector::VectorCodec;
use crate::{Distance, Result};

/// A node whose vectors take more than this many bytes is split in a shared
/// pass: about a quarter of a server's last-level cache, so that the nodes
/// the threads grow on their own stay in it. The same as the size of the
/// subtrees grown over a packed copy, so that each node left below the
/// shared levels is packed at once.
pub(crate) const SHARED_BYTES: usize = PACKED_BYTES;
/// The items of one task of a shared pass.
const PASS_CHUNK: usize = 1024;
/// In a tree's slots: the item is in no node of the current level.
const NO_SLOT: u32 = u32::MAX;

/// A child of a shared split.
#[derive(Clone, Copy)]
enum Child {
    /// Another shared split: its index in [`TopTree::tops`].
    Top(usize),
    /// A node grown on its own: its index in [`TopTree::below`].
    Below(usize),
}

/// A node split in a shared pass.
struct TopSplit<D: Distance> {
    plane: Plane<D>,
    left: Child,
    right: Child,
}

/// A node of the current level, to split in the coming pass.
struct Open<D: Distance> {
    /// Its items: a range of [`TopTree::items`].
    range: Range<usize>,
    /// The plane drawn for it; `None` when two-means found none.
    plane: Option<Plane<D>>,
}

/// What the trees of a batch share.
#[derive(Clone, Copy)]
struct Shape {
    n_trees: usize,
    /// A node of more items than this is split in a shared pass.
    shared_items: usize,
}

/// One tree of the batch.
struct TopTree<'g, 'f, 't, D: Distance> {
    grower: Grower<'g, 'f, 't, D>,
    /// The tree's column in the table of signs.
    column: usize,
    shape: Shape,
    /// The items (positions in the frozen items); each node's are a range.
    items: Vec<u32>,
    /// For each item (by position), the open node it is in: an index in
    /// [`Self::open`], or [`NO_SLOT`]. Empty when the root is not shared.
    slots: Vec<u32>,
    /// The nodes to split at the current level. They will be pushed to
    /// [`Self::tops`] in this order.
    open: Vec<Open<D>>,
    /// The nodes split in shared passes, breadth first, the root first.
    tops: Vec<TopSplit<D>>,
    /// The nodes left to grow on their own.
    below: Vec<Range<usize>>,
}

/// Grows a tree per grower over every item of `frozen`, splitting the
/// large nodes of all of them in shared passes; returns the address of
/// each root.
pub(crate) fn grow_trees<D: Distance>(
    params: &GrowParams<'_, D>,
    frozen: &FrozenItems<'_, D>,
    growers: Vec<Grower<'_, '_, '_, D>>,
) -> Result<Vec<u32>> {
    let n = frozen.len();
    let n_items = u32::try_from(n).map_err(|_| Error::TooManyNodes)?;
    let vector_bytes = frozen.vector_bytes().max(1);
    let shared_items = (SHARED_BYTES / vector_bytes).max(params.split_after).max(1);
    let shape = Shape { n_trees: growers.len(), shared_items };
    let shared_root = n > shape.shared_items;
    let mut trees: Vec<TopTree<D>> = growers
        .into_iter()
        .enumerate()
        .map(|(column, grower)| {
            let (slots, open, below) = match shared_root {
                // Every item starts in the root, the only open node.
                true => (vec![0; n], vec![Open { range: 0..n, plane: None }], Vec::new()),
                false => (Vec::new(), Vec::new(), std::iter::once(0..n).collect()),
            };
            TopTree { grower, column, shape, items: (0..n_items).collect(), slots, open, tops: Vec::new(), below }
        })
        .collect();
    if shared_root {
        let mut signs = vec![0i8; n * shape.n_trees];
        while trees.iter().any(|tree| !tree.open.is_empty()) {
            params.check_cancel()?;
            trees.par_iter_mut().for_each(|tree| {
                for open in &mut tree.open {
                    open.plane = tree.grower.plane(&tree.items[open.range.clone()]);
                }
            });
            pass(params, frozen, &trees, &mut signs)?;
            trees.par_iter_mut().for_each(|tree| tree.split_level(&signs));
        }
        for tree in &mut trees {
            tree.slots = Vec::new();
        }
    }
    trees.into_par_iter().map(TopTree::finish).collect()
}

/// Computes the sign of the margin of every item against the plane of its
/// open node in every tree (`signs`, a row per item, a column per tree),
/// reading each vector once.
fn pass<D: Distance>(
    params: &GrowParams<'_, D>,
    frozen: &FrozenItems<'_, D>,
    trees: &[TopTree<'_, '_, '_, D>],
    signs: &mut [i8],
) -> Result<()> {
    let planes: Vec<Vec<Option<PlaneView<'_, D>>>> =
        trees.iter().map(|tree| tree.open.iter().map(|open| open.plane.as_ref().map(view::<D>)).collect()).collect();
    let (n_trees, context) = (trees.len(), params.context);
    let rows = PASS_CHUNK * n_trees;
    signs.par_chunks_mut(rows).zip(frozen.leaves.par_chunks(PASS_CHUNK)).enumerate().try_for_each(
        |(chunk, (signs, leaves))| {
            params.check_cancel()?;
            let first = chunk * PASS_CHUNK;
            for (position, (signs, leaf)) in (first..).zip(signs.chunks_exact_mut(n_trees).zip(leaves)) {
                for ((sign, tree), planes) in signs.iter_mut().zip(trees).zip(&planes) {
                    // `NO_SLOT` is past the end of every level.
                    if let Some(&Some((normal, offset))) = planes.get(tree.slots[position] as usize) {
                        let margin = D::item_margin(normal, offset, leaf, context);
                        // As `side` reads margins: NaN goes left.
                        *sign = if margin > 0.0 {
                            1
                        } else if margin == 0.0 {
                            0
                        } else {
                            -1
                        };
                    }
                }
            }
            Ok(())
        },
    )
}

/// A plane with its normal read in place.
type PlaneView<'a, D> = (Normal<'a, D>, f32);

/// The normal of `plane`, read in place, and its offset.
fn view<D: Distance>((normal, offset): &Plane<D>) -> PlaneView<'_, D> {
    (D::NormalCodec::borrow(normal), *offset)
}

impl<D: Distance> TopTree<'_, '_, '_, D> {
    /// Splits the open nodes by the signs of the pass, or, when their plane
    /// is missing or too lopsided, on their own as a lone tree would; opens
    /// the children too large for the cache at the next level.
    fn split_level(&mut self, signs: &[i8]) {
        let open = std::mem::take(&mut self.open);
        let first_next = self.tops.len() + open.len();
        let (n_trees, column) = (self.shape.n_trees, self.column);
        for node in open {
            let items = &mut self.items[node.range.clone()];
            let sign = |item: u32| f32::from(signs[item as usize * n_trees + column]);
            let shared = node.plane.and_then(|plane| Some((plane, self.grower.partition(items, sign)?)));
            let (plane, n_left) = match shared {
                Some(split) => split,
                None => self.grower.split(items),
            };
            let mid = node.range.start + n_left;
            let left = self.child(node.range.start..mid, first_next);
            let right = self.child(mid..node.range.end, first_next);
            self.tops.push(TopSplit { plane, left, right });
        }
    }

    /// Files the child node of `range` as open at the next level, whose
    /// first node will be `tops[first_next]`, or as one to grow on its own;
    /// marks its items' slots to match.
    fn child(&mut self, range: Range<usize>, first_next: usize) -> Child {
        let (slot, child) = match range.len() > self.shape.shared_items {
            true => {
                self.open.push(Open { range: range.clone(), plane: None });
                ((self.open.len() - 1) as u32, Child::Top(first_next + self.open.len() - 1))
            }
            false => {
                self.below.push(range.clone());
                (NO_SLOT, Child::Below(self.below.len() - 1))
            }
        };
        for &item in &self.items[range] {
            self.slots[item as usize] = slot;
        }
        child
    }

    /// Grows the nodes left below the shared levels, then writes the
    /// shared splits over them; returns the address of the root.
    fn finish(mut self) -> Result<u32> {
        let mut below = Vec::with_capacity(self.below.len());
        for range in std::mem::take(&mut self.below) {
            below.push(self.grower.grow(&mut self.items[range])?);
        }
        match self.tops.is_empty() {
            // The root was small enough to grow on its own.
            true => Ok(below[0]),
            false => self.write_top(0, &below),
        }
    }

    /// Writes the shared split `top` after its children; returns its address.
    fn write_top(&mut self, top: usize, below: &[u32]) -> Result<u32> {
        let (left, right) = (self.tops[top].left, self.tops[top].right);
        let left = self.child_id(left, below)?;
        let right = self.child_id(right, below)?;
        self.grower.push_split(left, right, &self.tops[top].plane)
    }

    fn child_id(&mut self, child: Child, below: &[u32]) -> Result<u32> {
        match child {
            Child::Top(top) => self.write_top(top, below),
            Child::Below(index) => Ok(below[index]),
        }
    }
}
