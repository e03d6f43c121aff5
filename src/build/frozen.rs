//! The items a build grows trees over, read in place for its length.
//!
//! Every leaf borrows the write transaction's memory map (or its dirty
//! pages), so nothing is copied per tree. The borrow is what freezes the
//! index: while a `FrozenItems` lives, the transaction cannot be written, so
//! the bytes cannot move under the threads that read them.

use crate::item::Leaf;
use crate::vector::VectorCodec;
use crate::{Distance, Result};

/// Items in slot order, with their leaves.
pub(crate) struct FrozenItems<'t, D: Distance> {
    /// The slot of each item; a tree refers to an item by its position here.
    pub slots: Vec<u32>,
    /// The leaf of each item, at the same position.
    pub leaves: Vec<Leaf<'t, D>>,
}

impl<'t, D: Distance> FrozenItems<'t, D> {
    /// The items in `slots`, whose leaves `leaf` gives.
    pub fn of_slots(slots: impl IntoIterator<Item = u32>, leaf: impl Fn(u32) -> Result<Leaf<'t, D>>) -> Result<Self> {
        let slots: Vec<u32> = slots.into_iter().collect();
        let leaves = slots.iter().map(|&slot| leaf(slot)).collect::<Result<_>>()?;
        Ok(FrozenItems { slots, leaves })
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// The bytes of one vector.
    pub fn vector_bytes(&self) -> usize {
        self.leaves.first().map_or(0, |leaf| D::Codec::as_bytes(leaf.vector).len())
    }

    /// The items at `positions`, in that order, with their vectors copied
    /// one after another into `buffer`; `None` if a copied vector would not
    /// read back (it always does: it is the bytes of a vector that did).
    pub fn packed<'b>(&self, positions: &[u32], buffer: &'b mut Vec<u8>) -> Option<FrozenItems<'b, D>> {
        buffer.clear();
        for &p in positions {
            buffer.extend_from_slice(D::Codec::as_bytes(self.leaves[p as usize].vector));
        }
        // Every vector has the same size: reading them checked their dimensions.
        let vectors = positions.iter().zip(buffer.chunks_exact(self.vector_bytes().max(1)));
        let leaves = vectors.map(|(&p, bytes)| {
            Some(Leaf { header: self.leaves[p as usize].header, vector: D::Codec::view(bytes).ok()? })
        });
        let leaves: Vec<Leaf<'b, D>> = leaves.collect::<Option<_>>()?;
        (leaves.len() == positions.len())
            .then(|| FrozenItems { slots: positions.iter().map(|&p| self.slots[p as usize]).collect(), leaves })
    }
}
