//! [`Reader`]: a built index opened inside a read transaction.

mod check;
mod query;

use std::marker::PhantomData;

use heed::RoTxn;
use roaring::RoaringBitmap;

pub use self::check::{Stats, TreeStats};
pub use self::query::{DEFAULT_EXACT_BELOW_COUNT, DEFAULT_EXACT_BELOW_RATIO, QueryBuilder};
use crate::error::Error;
use crate::key::{Key, NodeMode};
use crate::metadata::Metadata;
use crate::store::{self, ItemIter, RawDatabase};
use crate::{Database, Distance, ItemId, Result};

/// A built index, read inside the transaction it was opened with.
///
/// Opening reads the format version and the metadata only; the trees and the
/// vectors are read in place, page by page, as queries need them.
#[derive(Debug)]
pub struct Reader<'t, D: Distance> {
    db: RawDatabase,
    index: u16,
    dimensions: usize,
    metadata: Metadata<'t>,
    marker: PhantomData<D>,
}

impl<'t, D: Distance> Reader<'t, D> {
    /// Opens `index`, which must have been built with the distance `D` and
    /// have no change pending.
    ///
    /// The errors say why not: [`Error::NotBuilt`], [`Error::FormatVersion`],
    /// [`Error::DistanceMismatch`], [`Error::NeedBuild`] or
    /// [`Error::Corrupted`].
    pub fn open(rtxn: &'t RoTxn, index: u16, db: Database<'static, D>) -> Result<Reader<'t, D>> {
        let db = store::raw(db);
        if !store::has_current_version(db, rtxn, index)? {
            return Err(Error::NotBuilt { index });
        }
        let metadata = store::metadata(db, rtxn, index)?.ok_or_else(|| {
            Error::corrupted(Key::metadata(index), "the version is there but the metadata is missing")
        })?;
        if metadata.distance != D::NAME {
            let found = metadata.distance.into_owned();
            return Err(Error::DistanceMismatch { index, expected: D::NAME, found });
        }
        if metadata.dimensions == 0 {
            return Err(Error::corrupted(Key::metadata(index), "the index has zero dimensions"));
        }
        if store::has_mode(db, rtxn, index, NodeMode::Updated)? {
            return Err(Error::NeedBuild { index });
        }
        let dimensions = metadata.dimensions as usize;
        Ok(Reader { db, index, dimensions, metadata, marker: PhantomData })
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

    /// The number of items.
    pub fn n_items(&self) -> u64 {
        self.metadata.items.len()
    }

    /// The ids of the items.
    pub fn item_ids(&self) -> &RoaringBitmap {
        &self.metadata.items
    }

    /// Whether the index holds no item.
    pub fn is_empty(&self) -> bool {
        self.metadata.items.is_empty()
    }

    /// Whether `item` is in the index.
    pub fn contains_item(&self, _rtxn: &RoTxn, item: ItemId) -> Result<bool> {
        Ok(self.metadata.items.contains(item))
    }

    /// The vector of `item`, if it is in the index.
    pub fn item_vector(&self, rtxn: &RoTxn, item: ItemId) -> Result<Option<Vec<f32>>> {
        if !self.metadata.items.contains(item) {
            return Ok(None);
        }
        match store::leaf::<D>(self.db, rtxn, self.index, item, self.dimensions)? {
            Some(leaf) => Ok(Some(leaf.vector.to_vec())),
            None => Err(Error::corrupted(Key::item(self.index, item), "an item of the trees has no vector")),
        }
    }

    /// Every item with its vector, in id order.
    pub fn iter<'r>(&self, rtxn: &'r RoTxn) -> Result<ItemIter<'r, D>> {
        ItemIter::new(self.db, rtxn, self.index, self.dimensions)
    }

    /// A query for the `count` nearest neighbours; see [`QueryBuilder`].
    pub fn nns(&self, count: usize) -> QueryBuilder<'_, 't, D> {
        QueryBuilder::new(self, count)
    }

    /// An upper bound on the nodes of a well-formed forest, which bounds every
    /// walk so that a corrupted (cyclic) tree cannot loop.
    fn max_nodes(&self) -> u64 {
        (2 * self.n_items() + 1) * self.n_trees() as u64
    }
}
