//! [`Reader`]: a built index opened inside a read transaction.

mod check;
mod query;
mod ranks;

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::OnceLock;

use heed::RoTxn;
use roaring::RoaringBitmap;

pub use self::check::{Stats, TreeStats};
pub use self::query::{
    DEFAULT_EXACT_BELOW_COUNT, DEFAULT_EXACT_BELOW_RATIO, DEFAULT_SEARCH_K_PER_RESULT, QueryBuilder, QueryStats,
    Searcher, default_search_k,
};
use self::ranks::Ranks;
use crate::codes::Codebook;
use crate::error::Error;
use crate::item::Leaf;
use crate::key::Key;
use crate::layout::{Layout, TreeRun, open_runs};
use crate::metadata::Metadata;
use crate::store::{self, ItemIter, RawDatabase};
use crate::{Database, Distance, ItemId, Result};

/// A built index, read inside the transaction it was opened with.
///
/// Opening reads the header, the metadata and the change marks, and looks
/// up every value of the read layer once (five prefix scans over a few
/// large values); queries then read the partitions, the trees and the
/// vectors in place, with no LMDB call per partition, node or candidate.
///
/// Reads never wait for a build: with changes pending, the reader answers
/// from the last build, except that items deleted since are never returned,
/// and an item whose vector was replaced is ranked by its new vector (it is
/// found where the trees placed its old one until the next build). Items
/// added since the last build become visible after the next one.
/// [`Reader::pending_changes`] lists the changed ids.
#[derive(Debug)]
pub struct Reader<'t, D: Distance> {
    db: RawDatabase,
    index: u16,
    dimensions: usize,
    metadata: Metadata<'t>,
    layout: Layout<'t, D>,
    /// What the slots' codes were made with, for the distances with codes.
    codebook: Option<Codebook>,
    /// Every tree's partitions and run, for the distances with codes.
    runs: Option<Vec<TreeRun<'t>>>,
    /// The items a query may return: the built ones not deleted since.
    visible: RoaringBitmap,
    /// The ids changed since the last build.
    pending: RoaringBitmap,
    /// The slots of the items deleted since the last build.
    hidden: RoaringBitmap,
    /// The slots of the new vectors of the items replaced since the last
    /// build, by the slot the build holds them in.
    replaced: HashMap<u32, u32>,
    /// The ranks of the built items, made by the first query that needs
    /// many.
    ranks: OnceLock<Ranks>,
    marker: PhantomData<D>,
}

impl<'t, D: Distance> Reader<'t, D> {
    /// Opens `index`, which must have been built with the distance `D`.
    ///
    /// The errors say why not: [`Error::NotBuilt`], [`Error::FormatVersion`],
    /// [`Error::DistanceMismatch`] or [`Error::Corrupted`]. Changes made
    /// since the last build do not prevent opening (see [`Reader`]).
    pub fn open(rtxn: &'t RoTxn, index: u16, db: Database<'static, D>) -> Result<Reader<'t, D>> {
        let db = store::raw(db);
        let Some(header) = store::header(db, rtxn, index)? else {
            return Err(match store::is_built(db, rtxn, index)? {
                true => Error::corrupted(Key::header(index), "the index is built but its header is missing"),
                false => Error::NotBuilt { index },
            });
        };
        if header.distance != D::NAME {
            let found = header.distance.into_owned();
            return Err(Error::DistanceMismatch { index, expected: D::NAME, found });
        }
        let dimensions = header.dimensions as usize;
        if !(1..=crate::MAX_DIMENSIONS).contains(&dimensions) {
            return Err(Error::corrupted(Key::header(index), format!("an index of {dimensions} dimensions")));
        }
        let metadata = store::metadata(db, rtxn, index)?.ok_or(Error::NotBuilt { index })?;
        let layout = Layout::open(db, rtxn, index, dimensions, &metadata)?;
        let codebook = store::built_codebook::<D>(db, rtxn, index, dimensions)?;
        let runs = match &codebook {
            Some(_) => open_runs(db, rtxn, index, dimensions, metadata.roots.len())?,
            None => None,
        };

        let mut pending = RoaringBitmap::new();
        let mut visible = metadata.items.clone();
        let mut hidden = RoaringBitmap::new();
        let mut replaced = HashMap::new();
        for mark in store::marks(db, rtxn, index)? {
            let (item, slot) = mark?;
            pending.insert(item);
            let Some(slot) = slot else { continue };
            if slot >= metadata.n_slots || !metadata.items.contains(item) {
                return Err(Error::corrupted(
                    Key::updated(index, item),
                    format!("the mark keeps slot {slot}, not built"),
                ));
            }
            match store::item_slot::<D>(db, rtxn, index, item)? {
                None => {
                    visible.remove(item);
                    hidden.insert(slot);
                }
                Some(new) if new == slot => {}
                Some(new) if new < layout.slots.len() && layout.slots.id(new) == item => {
                    replaced.insert(slot, new);
                }
                Some(new) => {
                    let reason = format!("the item's new slot {new} does not hold it");
                    return Err(Error::corrupted(Key::item(index, item), reason));
                }
            }
        }
        Ok(Reader {
            db,
            index,
            dimensions,
            metadata,
            layout,
            codebook,
            runs,
            visible,
            pending,
            hidden,
            replaced,
            ranks: OnceLock::new(),
            marker: PhantomData,
        })
    }

    /// The index this reader reads.
    pub fn index(&self) -> u16 {
        self.index
    }

    /// The number of dimensions of the vectors.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// The number of trees.
    pub fn n_trees(&self) -> usize {
        self.metadata.roots.len()
    }

    /// The number of items a query can return.
    pub fn n_items(&self) -> u64 {
        self.visible.len()
    }

    /// The ids of the items a query can return.
    pub fn item_ids(&self) -> &RoaringBitmap {
        &self.visible
    }

    /// Whether no query can return anything.
    pub fn is_empty(&self) -> bool {
        self.visible.is_empty()
    }

    /// The ids added, changed or deleted since the last build; empty when
    /// the reader sees the index exactly as built.
    pub fn pending_changes(&self) -> &RoaringBitmap {
        &self.pending
    }

    /// Whether `item` is one a query can return.
    pub fn contains_item(&self, _rtxn: &RoTxn, item: ItemId) -> Result<bool> {
        Ok(self.visible.contains(item))
    }

    /// The vector of `item`, if a query can return it.
    pub fn item_vector(&self, _rtxn: &RoTxn, item: ItemId) -> Result<Option<Vec<f32>>> {
        Ok(self.leaf(item)?.map(|leaf| D::values(&leaf, self.dimensions)))
    }

    /// The slot of `item`, if a query can return it, found in the
    /// directory (no look-up).
    pub(crate) fn slot(&self, item: ItemId) -> Result<Option<u32>> {
        if !self.visible.contains(item) {
            return Ok(None);
        }
        let slot = self.slot_at_rank(self.metadata.items.rank(item) - 1)?;
        if self.layout.slots.id(slot) != item {
            let reason = format!("the directory puts item {item} in slot {slot}, which holds another");
            return Err(Error::corrupted(Key::directory(self.index, 0), reason));
        }
        Ok(Some(slot))
    }

    /// The rank of `item`, a built item, quickly for many items.
    #[inline]
    pub(crate) fn rank(&self, item: ItemId) -> u64 {
        self.ranks.get_or_init(|| Ranks::of(&self.metadata.items)).rank(&self.metadata.items, item)
    }

    /// The slot the directory gives the item of rank `rank` among the built
    /// items, checked only to be a slot: the caller checks the ids of what
    /// it returns.
    #[inline]
    pub(crate) fn slot_at_rank(&self, rank: u64) -> Result<u32> {
        let slot = self.layout.directory.slot(rank);
        if slot >= self.layout.slots.len() {
            let reason = format!("the directory puts the item of rank {rank} in slot {slot}, past the last");
            return Err(Error::corrupted(Key::directory(self.index, 0), reason));
        }
        Ok(slot)
    }

    /// The leaf of the item in `slot`, or its new vector for an item
    /// replaced since the last build.
    #[inline]
    pub(crate) fn slot_leaf(&self, slot: u32) -> Leaf<'t, D> {
        match self.replaced.is_empty() {
            true => self.layout.slots.leaf(slot),
            false => self.layout.slots.leaf(self.replaced.get(&slot).copied().unwrap_or(slot)),
        }
    }

    /// Asks the CPU to fetch the leaf [`Reader::slot_leaf`] gives for
    /// `slot` into its caches.
    #[inline]
    pub(crate) fn prefetch(&self, slot: u32) {
        self.layout.slots.prefetch(self.replaced.get(&slot).copied().unwrap_or(slot));
    }

    /// The current leaf of `item`, if a query can return it.
    fn leaf(&self, item: ItemId) -> Result<Option<Leaf<'t, D>>> {
        Ok(self.slot(item)?.map(|slot| self.slot_leaf(slot)))
    }

    /// Every item a query can return, with its vector, in id order.
    pub fn iter<'r>(&self, rtxn: &'r RoTxn) -> Result<ItemIter<'r, D>>
    where
        't: 'r,
    {
        let iter = ItemIter::new(self.db, rtxn, self.index, self.dimensions, self.layout.slots.clone())?;
        Ok(if self.pending.is_empty() { iter } else { iter.only(self.visible.clone()) })
    }

    /// A query for the `count` nearest neighbours; see [`QueryBuilder`].
    pub fn nns(&self, count: usize) -> QueryBuilder<'_, 't, D> {
        QueryBuilder::new(self, count)
    }
}
