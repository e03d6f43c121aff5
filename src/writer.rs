//! [`Writer`]: adding, replacing and deleting items, and starting builds.

use std::marker::PhantomData;
use std::path::PathBuf;

use heed::{PutFlags, RoTxn, RwTxn};
use rand::{Rng, SeedableRng};
use roaring::RoaringBitmap;

use crate::build::Builder;
use crate::error::Error;
use crate::key::{Key, NodeMode};
use crate::metadata::Metadata;
use crate::node::encode_leaf;
use crate::store::{self, ItemIter, RawDatabase};
use crate::vector::VectorCodec;
use crate::{Database, Distance, ItemId, Result};

/// Writes the items of one index and builds its trees.
///
/// Every change marks the item as updated; readers see changes only after
/// [`Builder::build`] has run and the transaction is committed.
#[derive(Debug)]
pub struct Writer<D: Distance> {
    pub(crate) db: RawDatabase,
    pub(crate) index: u16,
    pub(crate) dimensions: usize,
    pub(crate) tmpdir: Option<PathBuf>,
    marker: PhantomData<D>,
}

impl<D: Distance> Writer<D> {
    /// A writer for `index` in `db`, whose vectors have `dimensions` values.
    ///
    /// Zero dimensions is accepted here, and every operation then returns
    /// [`Error::InvalidDimensions`].
    pub fn new(db: Database<'static, D>, index: u16, dimensions: usize) -> Writer<D> {
        Writer { db: store::raw(db), index, dimensions, tmpdir: None, marker: PhantomData }
    }

    /// The index this writer writes.
    pub fn index(&self) -> u16 {
        self.index
    }

    /// The number of dimensions of the vectors.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// The directory where builds put their temporary tree files (the
    /// system's temporary directory by default).
    pub fn set_tmpdir(&mut self, path: impl Into<PathBuf>) {
        self.tmpdir = Some(path.into());
    }

    /// Adds `item`, or replaces its vector if it exists.
    ///
    /// The vector must have the writer's dimensions and only finite values.
    pub fn add_item(&self, wtxn: &mut RwTxn, item: ItemId, vector: &[f32]) -> Result<()> {
        self.check_vector(vector)?;
        self.put_item(wtxn, item, vector, PutFlags::empty())
    }

    /// Adds `item`, whose id must be greater than every id in the index.
    ///
    /// Faster than [`Writer::add_item`] for loading items in id order: when
    /// the item would be the last key of the database (the highest index,
    /// before its first build), LMDB appends without searching and fills
    /// its pages.
    pub fn append_item(&self, wtxn: &mut RwTxn, item: ItemId, vector: &[f32]) -> Result<()> {
        self.check_vector(vector)?;
        let key = Key::item(self.index, item);
        if let Some(last) = store::last_id(self.db, wtxn, self.index, NodeMode::Item)? {
            if last >= item {
                return Err(Error::AppendOutOfOrder { item, last });
            }
        }
        let at_the_end = match self.db.last(wtxn)? {
            Some((last_key, _)) => last_key < key,
            None => true,
        };
        let flags = if at_the_end { PutFlags::APPEND } else { PutFlags::empty() };
        self.put_item(wtxn, item, vector, flags)
    }

    fn put_item(&self, wtxn: &mut RwTxn, item: ItemId, vector: &[f32], flags: PutFlags) -> Result<()> {
        self.mark_updated(wtxn, item)?;
        let mut bytes = Vec::with_capacity(1 + size_of::<D::Header>() + D::Codec::size(vector.len()));
        encode_leaf::<D>(vector, &mut bytes);
        self.db.put_with_flags(wtxn, flags, &Key::item(self.index, item), &bytes)?;
        Ok(())
    }

    /// Marks `item` as changed, before it changes. The first mark since the
    /// last build keeps the item's current leaf (empty if it has none): that
    /// is the vector the trees placed it with, which the next build follows
    /// to take it out of the trees without walking them.
    ///
    /// An index never built (no metadata) gets no marks: its first build
    /// grows every tree from every item, and no reader opens it before.
    /// Marks written while items load would also sit between the items and
    /// the rest of the database, splitting the pages the items are appended
    /// to (100k × 128 loaded 47% larger than the items).
    fn mark_updated(&self, wtxn: &mut RwTxn, item: ItemId) -> Result<()> {
        if store::get(self.db, wtxn, Key::metadata(self.index))?.is_none() {
            return Ok(());
        }
        let mark = Key::updated(self.index, item);
        if store::get(self.db, wtxn, mark)?.is_none() {
            let previous =
                store::get(self.db, wtxn, Key::item(self.index, item))?.map(<[u8]>::to_vec).unwrap_or_default();
            self.db.put(wtxn, &mark, &previous)?;
        }
        Ok(())
    }

    /// Deletes `item`; returns whether it existed. Readers stop returning it
    /// at once; the next build takes it out of the trees.
    pub fn del_item(&self, wtxn: &mut RwTxn, item: ItemId) -> Result<bool> {
        self.check_dimensions()?;
        let key = Key::item(self.index, item);
        if store::get(self.db, wtxn, key)?.is_none() {
            return Ok(false);
        }
        self.mark_updated(wtxn, item)?;
        self.db.delete(wtxn, &key)?;
        Ok(true)
    }

    /// Deletes every item and tree of this index. A built index stays built,
    /// and empty: readers answer nothing until items are added and built.
    pub fn clear(&self, wtxn: &mut RwTxn) -> Result<()> {
        self.check_dimensions()?;
        for mode in [NodeMode::Updated, NodeMode::Tree, NodeMode::Item] {
            store::delete_mode(self.db, wtxn, self.index, mode)?;
        }
        if let Some(metadata) = store::metadata(self.db, wtxn, self.index)? {
            let emptied = Metadata { roots: Vec::new(), items: RoaringBitmap::new(), ..metadata };
            let mut bytes = Vec::new();
            emptied.encode_into(&mut bytes);
            self.db.put(wtxn, &Key::metadata(self.index), &bytes)?;
        }
        Ok(())
    }

    /// The vector of `item`, if it is in the index.
    pub fn item_vector(&self, rtxn: &RoTxn, item: ItemId) -> Result<Option<Vec<f32>>> {
        self.check_dimensions()?;
        Ok(store::leaf::<D>(self.db, rtxn, self.index, item, self.dimensions)?
            .map(|leaf| D::values(&leaf, self.dimensions)))
    }

    /// Whether `item` is in the index.
    pub fn contains_item(&self, rtxn: &RoTxn, item: ItemId) -> Result<bool> {
        self.check_dimensions()?;
        Ok(store::get(self.db, rtxn, Key::item(self.index, item))?.is_some())
    }

    /// Whether the index holds no item.
    pub fn is_empty(&self, rtxn: &RoTxn) -> Result<bool> {
        self.check_dimensions()?;
        Ok(!store::has_mode(self.db, rtxn, self.index, NodeMode::Item)?)
    }

    /// Whether the index has changes that are not built yet, or was never
    /// built.
    pub fn need_build(&self, rtxn: &RoTxn) -> Result<bool> {
        self.check_dimensions()?;
        Ok(store::has_mode(self.db, rtxn, self.index, NodeMode::Updated)?
            || store::metadata(self.db, rtxn, self.index)?.is_none())
    }

    /// Every item with its vector, in id order.
    pub fn iter<'t>(&self, rtxn: &'t RoTxn) -> Result<ItemIter<'t, D>> {
        self.check_dimensions()?;
        ItemIter::new(self.db, rtxn, self.index, self.dimensions)
    }

    /// Changes the distance of this index to `ND`, in `wtxn`: rewrites every
    /// stored vector for `ND` (quantizing it, for a binary-quantized `ND`),
    /// drops the trees and any pending change, and returns a writer for
    /// `ND`. The index is then unbuilt until the next build, which grows a
    /// new forest with `ND`; abort the transaction to keep it as it was.
    ///
    /// Leaving a quantized distance for another one returns
    /// [`Error::LossyDistanceChange`]: the bits cannot give the values back.
    /// Changing to the same distance keeps the vectors and drops the trees
    /// and the metadata (a `split_after` set at the last build is
    /// forgotten).
    pub fn prepare_changing_distance<ND: Distance>(self, wtxn: &mut RwTxn) -> Result<Writer<ND>> {
        self.check_dimensions()?;
        let index = self.index;
        self.built_metadata(wtxn)?;
        if D::NAME != ND::NAME {
            if D::QUANTIZED {
                return Err(Error::LossyDistanceChange { index, from: D::NAME, to: ND::NAME });
            }
            self.rewrite_items::<ND>(wtxn)?;
        }
        for mode in [NodeMode::Updated, NodeMode::Tree] {
            store::delete_mode(self.db, wtxn, index, mode)?;
        }
        self.db.delete(wtxn, &Key::metadata(index))?;
        self.db.delete(wtxn, &Key::version(index))?;
        let Writer { db, index, dimensions, tmpdir, marker: _ } = self;
        Ok(Writer { db, index, dimensions, tmpdir, marker: PhantomData })
    }

    /// Re-encodes every item for `ND`, a batch of items at a time (a cursor
    /// cannot read while the same transaction writes).
    fn rewrite_items<ND: Distance>(&self, wtxn: &mut RwTxn) -> Result<()> {
        const BATCH: usize = 1024;
        let mut batch: Vec<(ItemId, Vec<u8>)> = Vec::with_capacity(BATCH);
        let mut from = 0;
        loop {
            let range = Key::item(self.index, from)..=Key::item(self.index, u32::MAX);
            for entry in self.db.range(wtxn, &range)?.take(BATCH) {
                let (key, bytes) = entry?;
                let leaf = store::decode_leaf::<D>(key, bytes, self.dimensions)?;
                let mut encoded = Vec::new();
                encode_leaf::<ND>(&D::values(&leaf, self.dimensions), &mut encoded);
                batch.push((key.id, encoded));
            }
            for (item, bytes) in &batch {
                self.db.put(wtxn, &Key::item(self.index, *item), bytes)?;
            }
            match batch.last() {
                Some(&(last, _)) if batch.len() == BATCH && last < u32::MAX => from = last + 1,
                _ => return Ok(()),
            }
            batch.clear();
        }
    }

    /// The metadata of the last build, checked against the format version
    /// and this writer's distance and dimensions; `None` if the index was
    /// never built. A build over an index of another format would misread
    /// its nodes, so it is refused with [`Error::FormatVersion`] like a read.
    pub(crate) fn built_metadata<'t>(&self, rtxn: &'t RoTxn) -> Result<Option<Metadata<'t>>> {
        let index = self.index;
        let has_version = store::has_current_version(self.db, rtxn, index)?;
        let Some(metadata) = store::metadata(self.db, rtxn, index)? else { return Ok(None) };
        if !has_version {
            return Err(Error::corrupted(Key::version(index), "the metadata is there but the version is missing"));
        }
        if metadata.distance != D::NAME {
            let found = metadata.distance.into_owned();
            return Err(Error::DistanceMismatch { index, expected: D::NAME, found });
        }
        if metadata.dimensions as usize != self.dimensions {
            let found = metadata.dimensions as usize;
            return Err(Error::IndexDimensionMismatch { index, expected: self.dimensions, found });
        }
        Ok(Some(metadata))
    }

    /// Options for a build of this index; finish with [`Builder::build`].
    ///
    /// `rng` seeds the build: the same seed over the same items gives the
    /// same trees, byte for byte, whatever the number of threads.
    pub fn builder<'a, R: Rng + SeedableRng>(&'a self, rng: &'a mut R) -> Builder<'a, D, R> {
        Builder::new(self, rng)
    }

    pub(crate) fn check_dimensions(&self) -> Result<()> {
        match u32::try_from(self.dimensions) {
            Ok(1..) => Ok(()),
            _ => Err(Error::InvalidDimensions { dimensions: self.dimensions }),
        }
    }

    fn check_vector(&self, vector: &[f32]) -> Result<()> {
        self.check_dimensions()?;
        check_query(vector, self.dimensions)
    }
}

/// Checks that `vector` has `dimensions` finite values.
pub(crate) fn check_query(vector: &[f32], dimensions: usize) -> Result<()> {
    if vector.len() != dimensions {
        return Err(Error::DimensionMismatch { expected: dimensions, received: vector.len() });
    }
    match vector.iter().position(|v| !v.is_finite()) {
        Some(position) => Err(Error::NonFiniteValue { position, value: vector[position] }),
        None => Ok(()),
    }
}
