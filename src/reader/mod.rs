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
/// Opening reads the format version, the metadata and the marks of pending
/// changes; the trees and the vectors are read in place, page by page, as
/// queries need them.
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
    /// The items a query may return: the built ones not deleted since.
    visible: RoaringBitmap,
    /// The ids changed since the last build.
    pending: RoaringBitmap,
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
        let mut pending = RoaringBitmap::new();
        let mut visible = metadata.items.clone();
        for entry in store::iter_mode(db, rtxn, index, NodeMode::Updated)? {
            let (key, _) = entry?;
            pending.insert(key.id);
            if visible.contains(key.id) && store::get(db, rtxn, Key::item(index, key.id))?.is_none() {
                visible.remove(key.id);
            }
        }
        let dimensions = metadata.dimensions as usize;
        Ok(Reader { db, index, dimensions, metadata, visible, pending, marker: PhantomData })
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
    pub fn item_vector(&self, rtxn: &RoTxn, item: ItemId) -> Result<Option<Vec<f32>>> {
        if !self.visible.contains(item) {
            return Ok(None);
        }
        match store::leaf::<D>(self.db, rtxn, self.index, item, self.dimensions)? {
            Some(leaf) => Ok(Some(D::values(&leaf, self.dimensions))),
            None => Err(Error::corrupted(Key::item(self.index, item), "an item of the trees has no vector")),
        }
    }

    /// Every item a query can return, with its vector, in id order.
    pub fn iter<'r>(&self, rtxn: &'r RoTxn) -> Result<ItemIter<'r, D>> {
        let iter = ItemIter::new(self.db, rtxn, self.index, self.dimensions)?;
        Ok(if self.pending.is_empty() { iter } else { iter.only(self.visible.clone()) })
    }

    /// A query for the `count` nearest neighbours; see [`QueryBuilder`].
    pub fn nns(&self, count: usize) -> QueryBuilder<'_, 't, D> {
        QueryBuilder::new(self, count)
    }

    /// An upper bound on the nodes of a well-formed forest, which bounds every
    /// walk so that a corrupted (cyclic) tree cannot loop.
    fn max_nodes(&self) -> u64 {
        (2 * self.metadata.items.len() + 1) * self.n_trees() as u64
    }
}
