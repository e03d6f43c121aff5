//! The changes since the last build, read from the change marks.
//!
//! Each mark keeps the slot the last build held its item in, if it did, so
//! a build takes deleted and replaced items out of the trees by their slot,
//! whatever their vectors and however floats round on this machine. A new
//! vector is in a slot written since the last build: a free one of the
//! build, or a new one past its slots.

use heed::RoTxn;
use roaring::RoaringBitmap;

use crate::error::Error;
use crate::item::Leaf;
use crate::key::Key;
use crate::layout::SlotTable;
use crate::metadata::Metadata;
use crate::store::{self, RawDatabase};
use crate::{Distance, ItemId, Result};

/// What changed, with the slots and leaves of the vectors to add.
pub(crate) struct Changes<'t, D: Distance> {
    /// The slots whose items leave the trees (deleted or replaced).
    pub removed: RoaringBitmap,
    /// The slots written since the last build (free then, or new) whose
    /// vectors enter the
    /// trees, with their items, in id order.
    pub inserted: Vec<(u32, ItemId, Leaf<'t, D>)>,
    /// The items after the build.
    pub items: RoaringBitmap,
}

impl<'t, D: Distance> Changes<'t, D> {
    /// Reads the marks of `index`, built as `built` says, whose slots are
    /// `slots`.
    pub fn read(
        db: RawDatabase,
        rtxn: &'t RoTxn,
        index: u16,
        slots: &SlotTable<'t, D>,
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
            let Some(current) = store::item_slot::<D>(db, rtxn, index, item)? else { continue };
            let key = Key::item(index, item);
            if Some(current) == slot {
                // Changed and changed back by hand: nothing to do.
                changes.removed.remove(current);
                changes.items.insert(item);
            } else if (current >= built.n_slots || built.free.contains(current))
                && current < slots.len()
                && slots.id(current) == item
            {
                changes.inserted.push((current, item, slots.leaf(current)));
                changes.items.insert(item);
            } else {
                return Err(Error::corrupted(
                    key,
                    format!("the item's slot {current} was not written since the build"),
                ));
            }
        }
        Ok(changes)
    }

    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.inserted.is_empty()
    }
}
