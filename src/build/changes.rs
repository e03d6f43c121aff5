//! The changes since the last build, read from the change marks.
//!
//! Each mark keeps the slot the last build held its item in, if it did, so
//! a build takes deleted and replaced items out of the trees by their slot,
//! whatever their vectors and however floats round on this machine.

use heed::RoTxn;
use roaring::RoaringBitmap;

use crate::error::Error;
use crate::item::{ItemEntry, Leaf};
use crate::key::Key;
use crate::metadata::Metadata;
use crate::store::{self, RawDatabase};
use crate::{Distance, ItemId, Result};

/// What changed, with the leaves of the vectors to add.
pub(crate) struct Changes<'t, D: Distance> {
    /// The slots whose items leave the trees (deleted or replaced).
    pub removed: RoaringBitmap,
    /// Items whose new vector enters the trees, in id order.
    pub inserted: Vec<(ItemId, Leaf<'t, D>)>,
    /// The items after the build.
    pub items: RoaringBitmap,
}

impl<'t, D: Distance> Changes<'t, D> {
    /// Reads the marks of `index`, built as `built` says.
    pub fn read(
        db: RawDatabase,
        rtxn: &'t RoTxn,
        index: u16,
        dimensions: usize,
        built: &Metadata,
    ) -> Result<Changes<'t, D>> {
        let mut changes = Changes { removed: RoaringBitmap::new(), inserted: Vec::new(), items: built.items.clone() };
        for mark in store::marks(db, rtxn, index)? {
            let (item, slot) = mark?;
            let key = Key::updated(index, item);
            match slot {
                Some(slot) if slot < built.n_slots && !built.free.contains(slot) && changes.items.remove(item) => {
                    changes.removed.insert(slot);
                }
                Some(slot) => return Err(Error::corrupted(key, format!("the mark keeps slot {slot}, not built"))),
                None if built.items.contains(item) => {
                    return Err(Error::corrupted(key, "a built item changed but its slot was not kept"));
                }
                None => {}
            }
            match store::item::<D>(db, rtxn, index, item, dimensions)? {
                Some(ItemEntry::Staged(leaf)) => {
                    changes.inserted.push((item, leaf));
                    changes.items.insert(item);
                }
                Some(ItemEntry::Built(built_slot)) if Some(built_slot) == slot => {
                    // Changed and changed back by hand: nothing to do.
                    changes.removed.remove(built_slot);
                    changes.items.insert(item);
                }
                Some(ItemEntry::Built(_)) => {
                    return Err(Error::corrupted(Key::item(index, item), "the item moved slots between builds"));
                }
                None => {}
            }
        }
        Ok(changes)
    }

    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.inserted.is_empty()
    }
}
