//! Updating an existing tree in place for the changes since the last build.
//!
//! Removed items descend with the leaf the tree placed them with, inserted
//! items with their current leaf, so only the paths they take are read. On
//! the way back up:
//! - a bucket that grows past `split_after` is grown into a subtree;
//! - a split whose two sides together hold at most `split_after` items
//!   collapses into one bucket;
//! - a split whose larger side holds more than 95% of its items is regrown
//!   from its items;
//! - any other touched split is rewritten with its new counts and children.
//!
//! Where a removed item lies exactly on a plane, or under a random split, it
//! descends both sides. Every removed item must be found: the descent uses
//! the same bytes, the same kernels and the same build context as the growth
//! that placed it, so a miss means the tree is corrupted.

use std::path::Path;

use heed::RoTxn;
use rand_chacha::ChaCha8Rng;
use roaring::RoaringBitmap;

use super::changes::Changes;
use super::frozen::FrozenItems;
use super::grow::{GrowParams, grow, side, tree_rng};
use super::patch::{NodeRef, Rewrite, TreePatch};
use super::tmp_nodes::TmpNodes;
use crate::error::Error;
use crate::key::Key;
use crate::node::Node;
use crate::store::{self, RawDatabase};
use crate::{Distance, Result};

/// Deeper recursion than this means a corrupted (cyclic) tree.
const MAX_DEPTH: usize = 2048;

/// What the updates of every tree share.
pub(crate) struct UpdateContext<'a, 't, D: Distance> {
    pub params: &'a GrowParams<'a, D>,
    pub changes: &'a Changes<'t, D>,
    pub db: RawDatabase,
    pub index: u16,
    pub dimensions: usize,
    pub tmpdir: Option<&'a Path>,
    pub seed: u64,
    /// An upper bound on the nodes of one tree, for bounded walks.
    pub node_limit: u64,
}

/// Applies the changes to the tree rooted at `root`, reading it through
/// `rtxn`; `tree` numbers its random stream.
pub(crate) fn update_tree<D: Distance>(
    cx: &UpdateContext<'_, '_, D>,
    rtxn: &RoTxn,
    root: u32,
    tree: u64,
) -> Result<TreePatch> {
    let patch = TreePatch::new(NodeRef::Existing(root), TmpNodes::new(cx.tmpdir));
    let mut updater = Updater { cx, rtxn, rng: tree_rng(cx.seed, tree), patch, found: RoaringBitmap::new() };
    let removed: Vec<u32> = (0..cx.changes.removed.len() as u32).collect();
    let inserted: Vec<u32> = (0..cx.changes.inserted.len() as u32).collect();
    let outcome = updater.update(root, &removed, &inserted, 0)?;
    updater.patch.root = outcome.node;
    for (item, _) in &cx.changes.removed {
        if !updater.found.contains(*item) {
            let reason = format!("item {item} is not where its vector leads in this tree");
            return Err(Error::corrupted(Key::tree(cx.index, root), reason));
        }
    }
    Ok(updater.patch)
}

/// A subtree after the update: its root and how many items it holds.
struct Outcome {
    node: NodeRef,
    count: u64,
}

struct Updater<'u, 'a, 't, D: Distance> {
    cx: &'u UpdateContext<'a, 't, D>,
    rtxn: &'u RoTxn<'u>,
    rng: ChaCha8Rng,
    patch: TreePatch,
    /// The removed items found in a bucket so far.
    found: RoaringBitmap,
}

impl<D: Distance> Updater<'_, '_, '_, D> {
    /// Updates the subtree at `id` for the removed and inserted items routed
    /// to it (positions in `changes.removed` and `changes.inserted`).
    fn update(&mut self, id: u32, removed: &[u32], inserted: &[u32], depth: usize) -> Result<Outcome> {
        let cx = self.cx;
        cx.params.check_cancel()?;
        let key = Key::tree(cx.index, id);
        if depth > MAX_DEPTH {
            return Err(Error::corrupted(key, "the tree is deeper than any valid tree"));
        }
        match store::tree_node::<D>(cx.db, self.rtxn, cx.index, id)? {
            Node::Descendants(bucket) => {
                let mut items = bucket.items.into_owned();
                let changed = self.apply(&mut items, removed, inserted);
                if items.len() > cx.params.split_after as u64 {
                    self.patch.free(id);
                    let root = self.grow(&items)?;
                    return Ok(Outcome { node: NodeRef::New(root), count: items.len() });
                }
                let count = items.len();
                if changed {
                    self.patch.rewrites.insert(id, Rewrite::Bucket(items));
                }
                Ok(Outcome { node: NodeRef::Existing(id), count })
            }
            Node::SplitPlaneNormal(split) => {
                let context = cx.params.context;
                let random = split.is_random();
                let (mut left_removed, mut right_removed) = (Vec::new(), Vec::new());
                for &r in removed {
                    let leaf = &cx.changes.removed[r as usize].1;
                    let margin = if random { 0.0 } else { D::item_margin(split.normal, split.offset, leaf, context) };
                    if margin <= 0.0 {
                        left_removed.push(r);
                    }
                    if margin >= 0.0 {
                        right_removed.push(r);
                    }
                }
                let (mut left_inserted, mut right_inserted) = (Vec::new(), Vec::new());
                for &i in inserted {
                    let leaf = &cx.changes.inserted[i as usize].1;
                    let margin = if random { 0.0 } else { D::item_margin(split.normal, split.offset, leaf, context) };
                    if side(margin, &mut self.rng) { right_inserted.push(i) } else { left_inserted.push(i) }
                }
                let left = self.child(split.left, split.left_count, &left_removed, &left_inserted, depth)?;
                let right = self.child(split.right, split.right_count, &right_removed, &right_inserted, depth)?;

                if left.count + right.count <= cx.params.split_after as u64 {
                    let (mut items, nodes) = self.gather(id)?;
                    self.apply(&mut items, removed, inserted);
                    for node in nodes.into_iter().filter(|&node| node != id) {
                        self.patch.free(node);
                    }
                    let count = items.len();
                    self.patch.rewrites.insert(id, Rewrite::Bucket(items));
                    return Ok(Outcome { node: NodeRef::Existing(id), count });
                }
                if cx.params.unbalanced(left.count, right.count) {
                    let (mut items, nodes) = self.gather(id)?;
                    self.apply(&mut items, removed, inserted);
                    for node in nodes {
                        self.patch.free(node);
                    }
                    let root = self.grow(&items)?;
                    return Ok(Outcome { node: NodeRef::New(root), count: items.len() });
                }
                let count = left.count + right.count;
                let unchanged = left.node == NodeRef::Existing(split.left)
                    && right.node == NodeRef::Existing(split.right)
                    && left.count == u64::from(split.left_count)
                    && right.count == u64::from(split.right_count);
                if !unchanged {
                    let rewrite = Rewrite::Split {
                        left: left.node,
                        right: right.node,
                        left_count: left.count as u32,
                        right_count: right.count as u32,
                        offset: split.offset,
                        normal: split.normal_bytes().to_vec(),
                    };
                    self.patch.rewrites.insert(id, rewrite);
                }
                Ok(Outcome { node: NodeRef::Existing(id), count })
            }
            Node::Leaf(_) => Err(Error::corrupted(key, "a tree node holds a vector")),
        }
    }

    /// Updates a child, or takes it as it is when no change reaches it.
    fn child(&mut self, id: u32, count: u32, removed: &[u32], inserted: &[u32], depth: usize) -> Result<Outcome> {
        if removed.is_empty() && inserted.is_empty() {
            Ok(Outcome { node: NodeRef::Existing(id), count: count.into() })
        } else {
            self.update(id, removed, inserted, depth + 1)
        }
    }

    /// Removes and inserts the routed items in `items`; returns whether
    /// anything changed.
    fn apply(&mut self, items: &mut RoaringBitmap, removed: &[u32], inserted: &[u32]) -> bool {
        let changes = self.cx.changes;
        let mut changed = false;
        for &r in removed {
            let item = changes.removed[r as usize].0;
            if items.remove(item) {
                self.found.insert(item);
                changed = true;
            }
        }
        for &i in inserted {
            changed |= items.insert(changes.inserted[i as usize].0);
        }
        changed
    }

    /// The items and node ids of the subtree at `id` as the tree stores it
    /// now, before this update.
    fn gather(&self, id: u32) -> Result<(RoaringBitmap, Vec<u32>)> {
        subtree::<D>(self.cx.db, self.rtxn, self.cx.index, id, self.cx.node_limit)
    }

    /// Grows a new subtree over `items`; returns its local root.
    fn grow(&mut self, items: &RoaringBitmap) -> Result<u32> {
        let cx = self.cx;
        let frozen = FrozenItems::<D>::read_ids(cx.db, self.rtxn, cx.index, cx.dimensions, items)?;
        grow(cx.params, &frozen, &mut self.rng, &mut self.patch.new_nodes)
    }
}

/// The items and node ids of the subtree at `root`, reading at most `limit`
/// nodes.
pub(crate) fn subtree<D: Distance>(
    db: RawDatabase,
    rtxn: &RoTxn,
    index: u16,
    root: u32,
    limit: u64,
) -> Result<(RoaringBitmap, Vec<u32>)> {
    let mut items = RoaringBitmap::new();
    let mut nodes = Vec::new();
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        nodes.push(node);
        let key = Key::tree(index, node);
        if nodes.len() as u64 > limit {
            return Err(Error::corrupted(key, "the tree holds more nodes than its items allow"));
        }
        match store::tree_node::<D>(db, rtxn, index, node)? {
            Node::Descendants(bucket) => items |= &*bucket.items,
            Node::SplitPlaneNormal(split) => stack.extend([split.right, split.left]),
            Node::Leaf(_) => return Err(Error::corrupted(key, "a tree node holds a vector")),
        }
    }
    Ok((items, nodes))
}
