//! The items of an index, read in place for the length of a build.
//!
//! Every leaf borrows the write transaction's memory map (or its dirty
//! pages), so nothing is copied per tree. The borrow is what freezes the
//! index: while a `FrozenItems` lives, the transaction cannot be written, so
//! the bytes cannot move under the threads that read them.

use heed::RoTxn;

use crate::error::Error;
use roaring::RoaringBitmap;

use crate::key::{Key, NodeMode};
use crate::node::Leaf;
use crate::store::{self, RawDatabase};
use crate::vector::VectorCodec;
use crate::{Distance, ItemId, Result};

/// The items of one index in id order, with their leaves.
pub(crate) struct FrozenItems<'t, D: Distance> {
    /// The item ids, ascending; a tree refers to an item by its position here.
    pub ids: Vec<ItemId>,
    /// The leaf of each item, at the same position.
    pub leaves: Vec<Leaf<'t, D>>,
}

impl<'t, D: Distance> FrozenItems<'t, D> {
    /// Reads every item of `index`, checking each has `dimensions` values.
    pub fn read(db: RawDatabase, rtxn: &'t RoTxn, index: u16, dimensions: usize) -> Result<FrozenItems<'t, D>> {
        let mut ids = Vec::new();
        let mut leaves = Vec::new();
        for entry in store::iter_mode(db, rtxn, index, NodeMode::Item)? {
            let (key, bytes) = entry.map_err(Error::from)?;
            leaves.push(store::decode_leaf::<D>(key, bytes, dimensions)?);
            ids.push(key.id);
        }
        Ok(FrozenItems { ids, leaves })
    }

    /// Reads the items `ids` of `index`, each of which must exist.
    pub fn read_ids(
        db: RawDatabase,
        rtxn: &'t RoTxn,
        index: u16,
        dimensions: usize,
        ids: &RoaringBitmap,
    ) -> Result<FrozenItems<'t, D>> {
        let mut leaves = Vec::with_capacity(ids.len() as usize);
        for item in ids {
            match store::leaf(db, rtxn, index, item, dimensions)? {
                Some(leaf) => leaves.push(leaf),
                None => return Err(Error::corrupted(Key::item(index, item), "a tree holds an item with no vector")),
            }
        }
        Ok(FrozenItems { ids: ids.iter().collect(), leaves })
    }

    pub fn len(&self) -> usize {
        self.ids.len()
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
            .then(|| FrozenItems { ids: positions.iter().map(|&p| self.ids[p as usize]).collect(), leaves })
    }
}
