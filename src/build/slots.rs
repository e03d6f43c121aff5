//! Which slots hold the items after a build.
//!
//! Vectors are in their slots before a build starts: `add_item` wrote them
//! there. A build decides only which slots its trees hold. A fresh build
//! takes the slot of every item's entry; a later one keeps every slot whose
//! item did not change, takes out the slots of deleted and replaced items,
//! and takes in the slots written since for new vectors. Every other slot
//! is free, for the next new vectors to take.

use roaring::RoaringBitmap;

use super::changes::Changes;
use crate::error::Error;
use crate::item::Leaf;
use crate::key::Key;
use crate::layout::SlotTable;
use crate::metadata::Metadata;
use crate::{Distance, ItemId, Result};

/// The slots after a build.
pub(crate) struct SlotPlan<'t, 'o, D: Distance> {
    index: u16,
    slots: &'o SlotTable<'t, D>,
    pub n_slots: u32,
    pub free: RoaringBitmap,
    /// The slots the build takes in, ascending, with their items and leaves.
    pub assigned: Vec<(u32, ItemId, Leaf<'t, D>)>,
}

impl<'t, 'o, D: Distance> SlotPlan<'t, 'o, D> {
    /// The slots of a build over `built` with `changes`, every slot being
    /// in `slots`.
    pub fn update(index: u16, slots: &'o SlotTable<'t, D>, built: &Metadata, changes: &Changes<'t, D>) -> Self {
        let n_slots = slots.len();
        let mut assigned = changes.inserted.clone();
        assigned.sort_unstable_by_key(|&(slot, ..)| slot);
        let mut free = &built.free | &changes.removed;
        free.insert_range(built.n_slots..n_slots);
        for &(slot, ..) in &assigned {
            free.remove(slot);
        }
        SlotPlan { index, slots, n_slots, free, assigned }
    }

    /// The leaf in `slot` after the build.
    pub fn leaf(&self, slot: u32) -> Result<Leaf<'t, D>> {
        match slot < self.n_slots && !self.free.contains(slot) {
            true => Ok(self.slots.leaf(slot)),
            false => Err(Error::corrupted(Key::slots(self.index, slot), format!("slot {slot} holds no item"))),
        }
    }

    /// The items taken in, in id order, with their slots.
    pub fn directory(&self) -> Vec<(ItemId, u32)> {
        let mut directory: Vec<(ItemId, u32)> = self.assigned.iter().map(|&(slot, item, _)| (item, slot)).collect();
        directory.sort_unstable();
        directory
    }

    /// The slots that hold an item after the build, ascending.
    pub fn live(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.n_slots).filter(|slot| !self.free.contains(*slot))
    }
}
