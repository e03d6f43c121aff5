//! Which slot each item gets, and the slot chunks a build rewrites.
//!
//! A fresh build numbers the items' slots in id order, then renames them in
//! the order of the first tree's buckets (`SlotPlan::rename`). A later build keeps
//! every slot whose item did not change, frees the slots of deleted and
//! replaced items, and gives each new vector the smallest free slot, or a
//! new one past the end: only the chunks of the slots it gives are
//! rewritten.

use roaring::RoaringBitmap;

use super::changes::Changes;
use crate::codes::{CodeWriter, Codebook};
use crate::error::Error;
use crate::item::Leaf;
use crate::key::Key;
use crate::layout::{SlotGeometry, SlotTable, Spool, pack_chunk};
use crate::metadata::Metadata;
use crate::{Distance, ItemId, Result};

/// The slots after a build.
pub(crate) struct SlotPlan<'t, 'o, D: Distance> {
    index: u16,
    /// The slots before the build; `None` for a fresh build.
    pub old: Option<&'o SlotTable<'t, D>>,
    pub n_slots: u32,
    pub free: RoaringBitmap,
    /// The slots given to new vectors, ascending, with their items.
    pub assigned: Vec<(u32, ItemId, Leaf<'t, D>)>,
}

impl<'t, 'o, D: Distance> SlotPlan<'t, 'o, D> {
    /// Slots `0..` for `items`, in their order.
    pub fn fresh(index: u16, items: Vec<(ItemId, Leaf<'t, D>)>) -> Result<SlotPlan<'t, 'o, D>> {
        let n_slots = u32::try_from(items.len()).map_err(|_| Error::TooManyNodes)?;
        let assigned = (0..).zip(items).map(|(slot, (item, leaf))| (slot, item, leaf)).collect();
        Ok(SlotPlan { index, old: None, n_slots, free: RoaringBitmap::new(), assigned })
    }

    /// Slots for the changes over the slots of `built`, read in `old`.
    pub fn update(index: u16, old: &'o SlotTable<'t, D>, built: &Metadata, changes: &Changes<'t, D>) -> Result<Self> {
        let mut pool = (&built.free | &changes.removed).into_iter();
        let mut next = u64::from(built.n_slots);
        let mut assigned = Vec::with_capacity(changes.inserted.len());
        for &(item, leaf) in &changes.inserted {
            let slot = match pool.next() {
                Some(slot) => slot,
                None => {
                    let slot = u32::try_from(next).map_err(|_| Error::TooManyNodes)?;
                    next += 1;
                    slot
                }
            };
            assigned.push((slot, item, leaf));
        }
        let free = pool.collect();
        assigned.sort_unstable_by_key(|&(slot, ..)| slot);
        let n_slots = u32::try_from(next).map_err(|_| Error::TooManyNodes)?;
        Ok(SlotPlan { index, old: Some(old), n_slots, free, assigned })
    }

    /// Renames each slot `s` this plan gives `renamed[s]` (a fresh plan,
    /// whose slots are `0..n`).
    pub fn rename(&mut self, renamed: &[u32]) {
        for (slot, ..) in &mut self.assigned {
            *slot = renamed[*slot as usize];
        }
        self.assigned.sort_unstable_by_key(|&(slot, ..)| slot);
    }

    /// The leaf in `slot` after the build.
    pub fn leaf(&self, slot: u32) -> Result<Leaf<'t, D>> {
        match self.assigned.binary_search_by_key(&slot, |&(slot, ..)| slot) {
            Ok(at) => Ok(self.assigned[at].2),
            Err(_) => match self.old {
                Some(old) if slot < old.len() && !self.free.contains(slot) => Ok(old.leaf(slot)),
                _ => Err(Error::corrupted(Key::slots(self.index, slot), format!("slot {slot} holds no item"))),
            },
        }
    }

    /// The leaves of the slots given, in slot order.
    pub fn leaves(&self) -> Vec<Leaf<'t, D>> {
        self.assigned.iter().map(|&(_, _, leaf)| leaf).collect()
    }

    /// The items given a slot, in id order, with their slots.
    pub fn directory(&self) -> Vec<(ItemId, u32)> {
        let mut directory: Vec<(ItemId, u32)> = self.assigned.iter().map(|&(slot, item, _)| (item, slot)).collect();
        directory.sort_unstable();
        directory
    }

    /// The slots that hold an item after the build, ascending.
    pub fn live(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.n_slots).filter(|slot| !self.free.contains(*slot))
    }

    /// Spools every chunk holding a slot given by this plan, with the codes
    /// of `codebook`, and returns their numbers with them.
    pub fn spool_chunks(
        &self,
        geometry: SlotGeometry,
        codebook: Option<&Codebook>,
        spool: &mut Spool,
    ) -> Result<Vec<u32>> {
        let mut encoder = codebook.map(CodeWriter::new);
        let mut chunks: Vec<u32> = self.assigned.iter().map(|&(slot, ..)| geometry.locate(slot).0).collect();
        chunks.dedup();
        let mut buffer = Vec::new();
        let mut assigned = self.assigned.iter().peekable();
        for &chunk in &chunks {
            buffer.clear();
            let first = chunk << geometry.shift;
            let count = geometry.slots_in(chunk, self.n_slots);
            pack_chunk(
                geometry,
                self.old,
                chunk,
                count,
                |at| {
                    let (slot, item, leaf) = **assigned.peek()?;
                    (slot == first + at as u32).then(|| {
                        assigned.next();
                        (item, leaf)
                    })
                },
                encoder.as_mut(),
                &mut buffer,
            );
            spool.append(&buffer)?;
            spool.next_value();
        }
        Ok(chunks)
    }
}
