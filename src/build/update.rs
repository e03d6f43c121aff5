//! Updating a tree for the changes since the last build.
//!
//! The tree is read once, in address order, which gives each node its item
//! count and each removed slot its bucket (no removed item is found by
//! descending with its vector, so no rounding can lose it). New vectors
//! descend from the root. The tree is then written anew, in post-order:
//! - a subtree no change reaches is copied as it is;
//! - a bucket that grows past `split_after` is grown into a subtree;
//! - a split whose two sides together hold at most `split_after` items
//!   becomes one bucket;
//! - a split whose larger side would hold more than 95% of its items is
//!   regrown from its items;
//! - any other split is kept, over its updated children.

use std::path::Path;

use rand::rngs::ChaCha8Rng;
use roaring::RoaringBitmap;

use super::frozen::FrozenItems;
use super::grow::{GrowParams, grow, side};
use super::slots::SlotPlan;
use crate::error::Error;
use crate::item::Leaf;
use crate::key::Key;
use crate::layout::{FinishedTree, NodeView, TreeFile, TreeView, node_error, node_key};
use crate::vector::VectorCodec;
use crate::{Distance, Result};

/// Deeper recursion than this means a corrupted tree.
const MAX_DEPTH: usize = 2048;
/// No parent: the root, or a node no split points to.
const NO_PARENT: u32 = u32::MAX;

/// What the updates of every tree share.
pub(crate) struct UpdateContext<'a, 't, 'o, D: Distance> {
    pub params: &'a GrowParams<'a, D>,
    pub plan: &'a SlotPlan<'t, 'o, D>,
    /// The slots that leave the trees.
    pub removed: &'a RoaringBitmap,
    /// The slots that enter the trees, with their leaves.
    pub inserted: Vec<(u32, Leaf<'t, D>)>,
    pub index: u16,
    pub normal: usize,
    pub tmpdir: Option<&'a Path>,
}

/// Writes tree number `tree` (`old` updated) into a new tree file; `rng`
/// breaks its ties and draws its new planes.
pub(crate) fn update_tree<D: Distance>(
    cx: &UpdateContext<'_, '_, '_, D>,
    old: &TreeView<'_>,
    tree: usize,
    rng: &mut ChaCha8Rng,
) -> Result<FinishedTree> {
    let error = |e| node_error(cx.index, tree, e);
    let nodes: Vec<(u32, NodeView)> = old.nodes(cx.normal).collect::<Result<_, _>>().map_err(error)?;
    let position = |addr: u32| -> Result<usize> {
        nodes
            .binary_search_by_key(&addr, |&(addr, _)| addr)
            .map_err(|_| Error::corrupted(node_key(cx.index, tree, addr), format!("no node starts at address {addr}")))
    };

    // Counts, parents, and the bucket of every removed slot.
    let mut counts = vec![0u64; nodes.len()];
    let mut parents = vec![NO_PARENT; nodes.len()];
    let mut changes: Vec<(Vec<u32>, Vec<u32>)> = Vec::new();
    let mut changed: Vec<u32> = vec![u32::MAX; nodes.len()];
    let mut found = 0;
    for (i, (_, node)) in nodes.iter().enumerate() {
        match node {
            NodeView::Bucket(slots) => {
                counts[i] = slots.len() as u64;
                for slot in slots.iter().filter(|&slot| cx.removed.contains(slot)) {
                    change_at(&mut changed, &mut changes, i).0.push(slot);
                    found += 1;
                }
            }
            NodeView::Split { left, right, .. } | NodeView::Random { left, right } => {
                let (left, right) = (position(*left)?, position(*right)?);
                counts[i] = counts[left] + counts[right];
                parents[left] = i as u32;
                parents[right] = i as u32;
            }
        }
    }
    let root = position(old.root)?;
    if found != cx.removed.len() {
        let reason = format!("the tree holds {found} of the {} slots to remove", cx.removed.len());
        return Err(Error::corrupted(Key::tree(cx.index, tree as u32, 0), reason));
    }

    // New vectors descend from the root (addresses decrease on the way:
    // the descent ends).
    for &(slot, leaf) in &cx.inserted {
        let mut at = root;
        loop {
            let (left, right, margin) = match nodes[at].1 {
                NodeView::Bucket(_) => break,
                NodeView::Split { left, right, offset, normal } => {
                    let normal = D::NormalCodec::view(normal)
                        .map_err(|e| Error::corrupted(node_key(cx.index, tree, nodes[at].0), e))?;
                    (left, right, D::item_margin(normal, offset, &leaf, cx.params.context))
                }
                NodeView::Random { left, right } => (left, right, 0.0),
            };
            at = position(if side(margin, rng) { right } else { left })?;
        }
        change_at(&mut changed, &mut changes, at).1.push(slot);
    }

    // The new counts, and which nodes a change reaches.
    let mut touched = vec![false; nodes.len()];
    for (i, &change) in changed.iter().enumerate() {
        if change == u32::MAX {
            continue;
        }
        let (removed, inserted) = &changes[change as usize];
        let mut at = i as u32;
        while at != NO_PARENT {
            let node = at as usize;
            counts[node] = counts[node] + inserted.len() as u64 - removed.len() as u64;
            touched[node] = true;
            at = parents[node];
        }
    }

    let mut writer = Rewriter {
        cx,
        tree,
        nodes: &nodes,
        position: &position,
        counts: &counts,
        touched: &touched,
        changed: &changed,
        changes: &changes,
        rng,
        file: TreeFile::new(cx.tmpdir, cx.normal),
        scratch: Vec::new(),
    };
    let root = writer.emit(root, 0)?;
    writer.file.finish(root)
}

/// The removed and inserted slots of node `i`, created on first use.
fn change_at<'c>(
    changed: &mut [u32],
    changes: &'c mut Vec<(Vec<u32>, Vec<u32>)>,
    i: usize,
) -> &'c mut (Vec<u32>, Vec<u32>) {
    if changed[i] == u32::MAX {
        changed[i] = changes.len() as u32;
        changes.push((Vec::new(), Vec::new()));
    }
    &mut changes[changed[i] as usize]
}

/// Writes the updated tree.
struct Rewriter<'w, 'a, 't, 'o, 'n, D: Distance> {
    cx: &'w UpdateContext<'a, 't, 'o, D>,
    tree: usize,
    nodes: &'w [(u32, NodeView<'n>)],
    position: &'w dyn Fn(u32) -> Result<usize>,
    counts: &'w [u64],
    touched: &'w [bool],
    changed: &'w [u32],
    changes: &'w [(Vec<u32>, Vec<u32>)],
    rng: &'w mut ChaCha8Rng,
    file: TreeFile,
    scratch: Vec<u32>,
}

impl<D: Distance> Rewriter<'_, '_, '_, '_, '_, D> {
    fn too_deep(&self, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            let key = Key::tree(self.cx.index, self.tree as u32, 0);
            return Err(Error::corrupted(key, "the tree is deeper than any valid tree"));
        }
        Ok(())
    }

    /// Writes the updated subtree of node `i`; returns its new address.
    fn emit(&mut self, i: usize, depth: usize) -> Result<u32> {
        self.too_deep(depth)?;
        self.cx.params.check_cancel()?;
        let (_, node) = self.nodes[i];
        if !self.touched[i] {
            return self.copy(i, depth);
        }
        let split_after = self.cx.params.split_after as u64;
        match node {
            NodeView::Bucket(_) => {
                let mut slots = Vec::new();
                self.gather(i, &mut slots, depth)?;
                if slots.len() as u64 > split_after { self.grow(&slots) } else { self.file.push_bucket(&mut slots) }
            }
            NodeView::Split { left, right, .. } | NodeView::Random { left, right } => {
                let (left, right) = ((self.position)(left)?, (self.position)(right)?);
                let (n_left, n_right) = (self.counts[left], self.counts[right]);
                if n_left + n_right <= split_after || self.cx.params.unbalanced(n_left, n_right) {
                    let mut slots = Vec::new();
                    self.gather(i, &mut slots, depth)?;
                    return match slots.len() as u64 <= split_after {
                        true => self.file.push_bucket(&mut slots),
                        false => self.grow(&slots),
                    };
                }
                let left = self.emit(left, depth + 1)?;
                let right = self.emit(right, depth + 1)?;
                let (offset, normal) = match node {
                    NodeView::Split { offset, normal, .. } => (offset, normal),
                    _ => (0.0, &[][..]),
                };
                self.file.push_split(left, right, offset, normal)
            }
        }
    }

    /// Copies the subtree of node `i` as it is; returns its new address.
    fn copy(&mut self, i: usize, depth: usize) -> Result<u32> {
        self.too_deep(depth)?;
        match self.nodes[i].1 {
            NodeView::Bucket(slots) => {
                self.scratch.clear();
                self.scratch.extend(slots.iter());
                self.file.push_bucket(&mut self.scratch)
            }
            NodeView::Split { left, right, offset, normal } => {
                let left = self.copy((self.position)(left)?, depth + 1)?;
                let right = self.copy((self.position)(right)?, depth + 1)?;
                self.file.push_split(left, right, offset, normal)
            }
            NodeView::Random { left, right } => {
                let left = self.copy((self.position)(left)?, depth + 1)?;
                let right = self.copy((self.position)(right)?, depth + 1)?;
                self.file.push_split(left, right, 0.0, &[])
            }
        }
    }

    /// Appends the slots under node `i` after the update to `out`.
    fn gather(&self, i: usize, out: &mut Vec<u32>, depth: usize) -> Result<()> {
        self.too_deep(depth)?;
        match self.nodes[i].1 {
            NodeView::Bucket(slots) => match self.changed[i] {
                u32::MAX => out.extend(slots.iter()),
                change => {
                    let (removed, inserted) = &self.changes[change as usize];
                    out.extend(slots.iter().filter(|slot| !removed.contains(slot)));
                    out.extend_from_slice(inserted);
                }
            },
            NodeView::Split { left, right, .. } | NodeView::Random { left, right } => {
                self.gather((self.position)(left)?, out, depth + 1)?;
                self.gather((self.position)(right)?, out, depth + 1)?;
            }
        }
        Ok(())
    }

    /// Grows a new subtree over `slots`; returns its root's address.
    fn grow(&mut self, slots: &[u32]) -> Result<u32> {
        let frozen = FrozenItems::of_slots(slots.iter().copied(), |slot| self.cx.plan.leaf(slot))?;
        grow(self.cx.params, &frozen, self.rng, &mut self.file)
    }
}
