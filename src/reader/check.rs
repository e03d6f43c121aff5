//! Walking every tree: [`Reader::stats`] and [`Reader::check`].

use heed::RoTxn;
use roaring::RoaringBitmap;

use super::Reader;
use crate::error::Error;
use crate::key::{Key, NodeMode};
use crate::node::Node;
use crate::store;
use crate::vector::VectorCodec;
use crate::{Distance, Result};

/// The shape of one tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeStats {
    /// The longest path from the root to a bucket, in edges.
    pub depth: usize,
    /// The number of split nodes.
    pub split_nodes: usize,
    /// How many of the splits were random (no plane separated the items).
    pub random_splits: usize,
    /// The number of buckets.
    pub buckets: usize,
    /// The number of items in the largest bucket.
    pub largest_bucket: u64,
}

/// The shape of every tree of an index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// One entry per tree, in tree order.
    pub trees: Vec<TreeStats>,
}

/// A node as [`Reader::check`] remembers it: a split's children with the
/// counts it stores, or a bucket's size.
#[derive(Clone, Copy)]
enum Walked {
    Split([(u32, u32); 2]),
    Bucket(u64),
}

/// What a walk does at each node.
trait Visit {
    fn node(&mut self, key: Key, depth: usize, node: &Node<'_, impl Distance>) -> Result<()>;
}

impl<D: Distance> Reader<'_, D> {
    /// Walks one tree depth first, bounded by the node count a well-formed
    /// tree can have, so a corrupted tree gives an error instead of a loop.
    fn walk(&self, rtxn: &RoTxn, root: u32, visit: &mut impl Visit) -> Result<()> {
        let limit = 2 * self.n_items() + 1;
        let mut stack = vec![(root, 0usize)];
        let mut visited = 0u64;
        while let Some((id, depth)) = stack.pop() {
            let key = Key::tree(self.index, id);
            visited += 1;
            if visited > limit {
                return Err(Error::corrupted(key, "the tree holds more nodes than its items allow"));
            }
            let node = store::tree_node::<D>(self.db, rtxn, self.index, id)?;
            visit.node(key, depth, &node)?;
            match node {
                Node::SplitPlaneNormal(split) => {
                    stack.push((split.right, depth + 1));
                    stack.push((split.left, depth + 1));
                }
                Node::Descendants(_) => {}
                Node::Leaf(_) => return Err(Error::corrupted(key, "a tree node holds a vector")),
            }
        }
        Ok(())
    }

    /// The depth, splits and buckets of each tree.
    pub fn stats(&self, rtxn: &RoTxn) -> Result<Stats> {
        struct Shape(TreeStats);
        impl Visit for Shape {
            fn node(&mut self, _key: Key, depth: usize, node: &Node<'_, impl Distance>) -> Result<()> {
                let stats = &mut self.0;
                stats.depth = stats.depth.max(depth);
                match node {
                    Node::SplitPlaneNormal(split) => {
                        stats.split_nodes += 1;
                        stats.random_splits += usize::from(split.is_random());
                    }
                    Node::Descendants(bucket) => {
                        stats.buckets += 1;
                        stats.largest_bucket = stats.largest_bucket.max(bucket.items.len());
                    }
                    Node::Leaf(_) => {}
                }
                Ok(())
            }
        }
        let mut trees = Vec::with_capacity(self.n_trees());
        for &root in &self.metadata.roots {
            let mut shape = Shape(TreeStats::default());
            self.walk(rtxn, root, &mut shape)?;
            trees.push(shape.0);
        }
        Ok(Stats { trees })
    }

    /// Verifies the whole index and returns the first problem found: every
    /// tree node exists and decodes, no node is reached twice, each tree
    /// holds every built item exactly once, split counts match the items
    /// under them, split normals have the index's dimensions, every item has
    /// a vector of the right length (with clear padding bits, for bits), every change since the last build kept
    /// the vector the trees placed its item with, and there is no stray node
    /// or item.
    pub fn check(&self, rtxn: &RoTxn) -> Result<()> {
        struct Structure<'a> {
            dimensions: usize,
            items: &'a RoaringBitmap,
            reached: RoaringBitmap,
            in_tree: RoaringBitmap,
            /// The nodes of the current tree in walk order.
            order: Vec<(Key, Walked)>,
        }
        impl Visit for Structure<'_> {
            fn node(&mut self, key: Key, _depth: usize, node: &Node<'_, impl Distance>) -> Result<()> {
                if !self.reached.insert(key.id) {
                    return Err(Error::corrupted(key, "the node is reached twice"));
                }
                match node {
                    Node::SplitPlaneNormal(split) => {
                        let children = [(split.left, split.left_count), (split.right, split.right_count)];
                        self.order.push((key, Walked::Split(children)));
                        if !split.has_dimensions(self.dimensions) {
                            let (len, dimensions) = (split.normal_bytes().len(), self.dimensions);
                            let reason = format!("the split normal has {len} bytes, wrong for {dimensions} dimensions");
                            return Err(Error::corrupted(key, reason));
                        }
                    }
                    Node::Descendants(bucket) => {
                        if !bucket.items.is_subset(self.items) {
                            return Err(Error::corrupted(key, "the bucket holds items the index does not"));
                        }
                        if !self.in_tree.is_disjoint(&bucket.items) {
                            return Err(Error::corrupted(key, "an item is in two buckets of one tree"));
                        }
                        self.in_tree |= &*bucket.items;
                        self.order.push((key, Walked::Bucket(bucket.items.len())));
                    }
                    Node::Leaf(_) => {}
                }
                Ok(())
            }
        }

        let items = &self.metadata.items;
        let mut structure = Structure {
            dimensions: self.dimensions,
            items,
            reached: RoaringBitmap::new(),
            in_tree: RoaringBitmap::new(),
            order: Vec::new(),
        };
        for &root in &self.metadata.roots {
            structure.in_tree.clear();
            structure.order.clear();
            self.walk(rtxn, root, &mut structure)?;
            // Children come after their parent in the walk: sum sizes backwards.
            let mut sizes = std::collections::HashMap::new();
            for (key, node) in structure.order.iter().rev() {
                let size = match *node {
                    Walked::Bucket(size) => size,
                    Walked::Split(children) => {
                        for (child, count) in children {
                            if sizes.get(&child) != Some(&u64::from(count)) {
                                let reason = format!("the split counts {count} items under node {child}");
                                return Err(Error::corrupted(*key, reason));
                            }
                        }
                        children.iter().map(|(_, count)| u64::from(*count)).sum()
                    }
                };
                sizes.insert(key.id, size);
            }
            if structure.in_tree != *items {
                let missing = items - &structure.in_tree;
                let reason = format!("the tree misses {} items, among them {:?}", missing.len(), missing.min());
                return Err(Error::corrupted(Key::tree(self.index, root), reason));
            }
        }

        for entry in store::iter_mode(self.db, rtxn, self.index, NodeMode::Tree)? {
            let (key, _) = entry?;
            if !structure.reached.contains(key.id) {
                return Err(Error::corrupted(key, "no tree reaches this node"));
            }
        }
        let mut stored = RoaringBitmap::new();
        for entry in store::iter_mode(self.db, rtxn, self.index, NodeMode::Item)? {
            let (key, bytes) = entry?;
            if !items.contains(key.id) && !self.pending.contains(key.id) {
                return Err(Error::corrupted(key, "the item is stored but in no tree, and not marked as changed"));
            }
            let leaf = store::decode_leaf::<D>(key, bytes, self.dimensions)?;
            if !D::Codec::is_canonical(leaf.vector, self.dimensions) {
                return Err(Error::corrupted(key, "the vector has padding bits set"));
            }
            stored.insert(key.id);
        }
        if let Some(missing) = (items - &stored - &self.pending).min() {
            return Err(Error::corrupted(Key::item(self.index, missing), "an item of the trees has no vector"));
        }
        for entry in store::iter_mode(self.db, rtxn, self.index, NodeMode::Updated)? {
            let (key, previous) = entry?;
            if items.contains(key.id) {
                store::decode_leaf::<D>(key, previous, self.dimensions)?;
            }
        }
        Ok(())
    }
}
