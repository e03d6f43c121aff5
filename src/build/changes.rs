//! The changes since the last build, read from the `updated` marks.
//!
//! Each mark's value is the leaf the item had when it was first changed
//! after the last build (empty if it had none). For an item the trees hold,
//! that is the vector the trees placed it with, so an update finds the
//! item's bucket by descending with it, without walking the trees.

use heed::RoTxn;
use roaring::RoaringBitmap;

use crate::error::Error;
use crate::key::NodeMode;
use crate::node::Leaf;
use crate::store::{self, RawDatabase};
use crate::{Distance, ItemId, Result};

/// What changed, with the leaves needed to apply it to the trees.
pub(crate) struct Changes<'t, D: Distance> {
    /// Items the trees hold that must leave them, with the leaf they were placed with.
    pub removed: Vec<(ItemId, Leaf<'t, D>)>,
    /// Items that must enter the trees, with their current leaf.
    pub inserted: Vec<(ItemId, Leaf<'t, D>)>,
    /// Every changed id.
    pub updated: RoaringBitmap,
    /// The items after the build.
    pub items: RoaringBitmap,
}

impl<'t, D: Distance> Changes<'t, D> {
    /// Reads the marks of `index`; `built` is what the trees hold now.
    pub fn read(
        db: RawDatabase,
        rtxn: &'t RoTxn,
        index: u16,
        dimensions: usize,
        built: &RoaringBitmap,
    ) -> Result<Changes<'t, D>> {
        let mut changes =
            Changes { removed: Vec::new(), inserted: Vec::new(), updated: RoaringBitmap::new(), items: built.clone() };
        for entry in store::iter_mode(db, rtxn, index, NodeMode::Updated)? {
            let (key, old) = entry.map_err(Error::from)?;
            let item = key.id;
            changes.updated.insert(item);
            if built.contains(item) {
                if old.is_empty() {
                    return Err(Error::corrupted(key, "a built item changed but its previous vector was not kept"));
                }
                changes.removed.push((item, store::decode_leaf(key, old, dimensions)?));
                changes.items.remove(item);
            }
            if let Some(leaf) = store::leaf::<D>(db, rtxn, index, item, dimensions)? {
                changes.inserted.push((item, leaf));
                changes.items.insert(item);
            }
        }
        Ok(changes)
    }

    /// No change to apply: a fresh forest does not need the marks.
    pub fn none() -> Changes<'t, D> {
        Changes {
            removed: Vec::new(),
            inserted: Vec::new(),
            updated: RoaringBitmap::new(),
            items: RoaringBitmap::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.updated.is_empty()
    }
}
