//! [`Writer`]: adding, replacing and deleting items, and starting builds.

use std::borrow::Cow;
use std::marker::PhantomData;
use std::path::PathBuf;

use heed::{PutFlags, RoTxn, RwTxn};
use rand::Rng;
use roaring::RoaringBitmap;

use crate::build::Builder;
use crate::error::Error;
use crate::item::{encode_built, encode_leaf, encode_mark};
use crate::key::{Key, NodeMode};
use crate::layout::{NewSlots, SlotGeometry, SlotTable, read_slot, write_slot};
use crate::metadata::{Header, Metadata};
use crate::store::{self, ItemIter, RawDatabase};
use crate::vector::VectorCodec;
use crate::{Database, Distance, FORMAT_VERSION, ItemId, Result};

/// The most dimensions an index can have.
pub const MAX_DIMENSIONS: usize = 1 << 18;

/// Writes the items of one index and builds its trees.
///
/// Every change is written at once, in the caller's transaction: a vector
/// is written once, in the slot queries read it from, and a build adds
/// only the trees over it. Readers see additions after the next
/// [`Builder::build`] (deletions at once).
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
    /// The dimensions and the distance are checked against the index by
    /// every operation: a writer that does not match an index already
    /// written to gets [`Error::IndexDimensionMismatch`] or
    /// [`Error::DistanceMismatch`], and changes nothing. Zero dimensions (or
    /// more than [`MAX_DIMENSIONS`]) is accepted here, and every operation
    /// then returns [`Error::InvalidDimensions`].
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

    /// The directory where builds put their temporary files (the system's
    /// temporary directory by default).
    pub fn set_tmpdir(&mut self, path: impl Into<PathBuf>) {
        self.tmpdir = Some(path.into());
    }

    /// Adds `item`, or replaces its vector if it exists.
    ///
    /// The vector must have the writer's dimensions and only finite values.
    /// Items added in increasing id order to the last index of the database
    /// before its first build are appended, which fills LMDB's pages.
    pub fn add_item(&self, wtxn: &mut RwTxn, item: ItemId, vector: &[f32]) -> Result<()> {
        self.check_vector(vector)?;
        self.put_item(wtxn, item, vector)
    }

    /// Adds `item`, whose id must be greater than every id in the index.
    ///
    /// The same as [`Writer::add_item`] for ids in increasing order, and an
    /// error, [`Error::AppendOutOfOrder`], for any other.
    pub fn append_item(&self, wtxn: &mut RwTxn, item: ItemId, vector: &[f32]) -> Result<()> {
        self.check_vector(vector)?;
        if let Some(last) = store::last_id(self.db, wtxn, self.index, NodeMode::Item)? {
            if last >= item {
                return Err(Error::AppendOutOfOrder { item, last });
            }
        }
        self.put_item(wtxn, item, vector)
    }

    /// Writes `vector` in a slot no item holds and points `item`'s entry to
    /// it.
    fn put_item(&self, wtxn: &mut RwTxn, item: ItemId, vector: &[f32]) -> Result<()> {
        self.ensure_header(wtxn)?;
        self.mark_updated(wtxn, item)?;
        let mut leaf = Vec::with_capacity(size_of::<D::Header>() + D::Codec::size(vector.len()));
        encode_leaf::<D>(vector, &mut leaf);
        let slot = write_slot(self.db, wtxn, self.index, SlotGeometry::of::<D>(self.dimensions), item, &leaf)?;
        let key = Key::item(self.index, item);
        let flags = if store::is_past_the_end(self.db, wtxn, key)? { PutFlags::APPEND } else { PutFlags::empty() };
        self.db.put_with_flags(wtxn, flags, &key, &encode_built(slot))?;
        Ok(())
    }

    /// Writes the header of this index for the distance `ND`.
    fn write_header<ND: Distance>(&self, wtxn: &mut RwTxn) -> Result<()> {
        let header = Header {
            version: FORMAT_VERSION,
            // Checked by `check_dimensions`.
            dimensions: self.dimensions as u32,
            distance: Cow::Borrowed(ND::NAME),
        };
        let mut bytes = Vec::new();
        header.encode_into(&mut bytes);
        self.db.put(wtxn, &Key::header(self.index), &bytes)?;
        Ok(())
    }

    /// Marks `item` as changed, before it changes. The first mark since the
    /// last build keeps the slot the build put the item in, if any: the next
    /// build takes that slot out of the trees.
    ///
    /// An index never built gets no marks: its first build takes every item.
    fn mark_updated(&self, wtxn: &mut RwTxn, item: ItemId) -> Result<()> {
        if !store::is_built(self.db, wtxn, self.index)? || store::mark(self.db, wtxn, self.index, item)?.is_some() {
            return Ok(());
        }
        let slot = store::item_slot::<D>(self.db, wtxn, self.index, item)?;
        self.db.put(wtxn, &Key::updated(self.index, item), &encode_mark(slot))?;
        Ok(())
    }

    /// Deletes `item`; returns whether it existed. Readers stop returning it
    /// at once; the next build takes it out of the trees.
    pub fn del_item(&self, wtxn: &mut RwTxn, item: ItemId) -> Result<bool> {
        if self.header(wtxn)?.is_none() {
            return Ok(false);
        }
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
        if self.header(wtxn)?.is_none() {
            return Ok(());
        }
        for mode in [NodeMode::Updated, NodeMode::Item, NodeMode::Slots] {
            store::delete_mode(self.db, wtxn, self.index, mode)?;
        }
        store::delete_read_layer(self.db, wtxn, self.index)?;
        if let Some(metadata) = store::metadata(self.db, wtxn, self.index)? {
            let emptied = Metadata {
                roots: Vec::new(),
                n_slots: 0,
                items: RoaringBitmap::new(),
                free: RoaringBitmap::new(),
                ..metadata
            };
            let mut bytes = Vec::new();
            emptied.encode_into(&mut bytes);
            self.db.put(wtxn, &Key::metadata(self.index), &bytes)?;
        }
        Ok(())
    }

    /// The vector of `item`, if it is in the index.
    pub fn item_vector(&self, rtxn: &RoTxn, item: ItemId) -> Result<Option<Vec<f32>>> {
        self.header(rtxn)?;
        let Some(slot) = store::item_slot::<D>(self.db, rtxn, self.index, item)? else { return Ok(None) };
        let (id, leaf) = read_slot::<D>(self.db, rtxn, self.index, self.dimensions, slot)?;
        if id != item {
            let reason = format!("the item is in slot {slot}, which holds item {id}");
            return Err(Error::corrupted(Key::item(self.index, item), reason));
        }
        Ok(Some(D::values(&leaf, self.dimensions)))
    }

    /// Whether `item` is in the index.
    pub fn contains_item(&self, rtxn: &RoTxn, item: ItemId) -> Result<bool> {
        self.header(rtxn)?;
        Ok(store::get(self.db, rtxn, Key::item(self.index, item))?.is_some())
    }

    /// Whether the index holds no item.
    pub fn is_empty(&self, rtxn: &RoTxn) -> Result<bool> {
        self.header(rtxn)?;
        Ok(!store::has_mode(self.db, rtxn, self.index, NodeMode::Item)?)
    }

    /// Whether the index has changes that are not built yet, or was never
    /// built.
    pub fn need_build(&self, rtxn: &RoTxn) -> Result<bool> {
        self.header(rtxn)?;
        Ok(!store::is_built(self.db, rtxn, self.index)?
            || store::has_mode(self.db, rtxn, self.index, NodeMode::Updated)?)
    }

    /// Every item with its vector, in id order.
    pub fn iter<'t>(&self, rtxn: &'t RoTxn) -> Result<ItemIter<'t, D>> {
        self.header(rtxn)?;
        let n_slots = store::metadata(self.db, rtxn, self.index)?.map_or(0, |metadata| metadata.n_slots);
        let slots = SlotTable::open(self.db, rtxn, self.index, self.dimensions, n_slots)?;
        ItemIter::new(self.db, rtxn, self.index, self.dimensions, slots)
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
        let index = self.index;
        if self.header(wtxn)?.is_some() {
            if D::NAME != ND::NAME && D::QUANTIZED {
                return Err(Error::LossyDistanceChange { index, from: D::NAME, to: ND::NAME });
            }
            self.restage_items::<ND>(wtxn)?;
            store::delete_mode(self.db, wtxn, index, NodeMode::Updated)?;
            store::delete_read_layer(self.db, wtxn, index)?;
            self.db.delete(wtxn, &Key::metadata(index))?;
            self.db.delete(wtxn, &Key::codebook(index))?;
            self.write_header::<ND>(wtxn)?;
        }
        let Writer { db, index, dimensions, tmpdir, marker: _ } = self;
        Ok(Writer { db, index, dimensions, tmpdir, marker: PhantomData })
    }

    /// Rewrites every item's vector for `ND`, in new slots numbered in id
    /// order (the vectors are spooled to a temporary file first: they are
    /// read from the slots they replace).
    pub(crate) fn restage_items<ND: Distance>(&self, wtxn: &mut RwTxn) -> Result<()> {
        let mut slots = NewSlots::new(SlotGeometry::of::<ND>(self.dimensions), self.tmpdir.as_deref());
        let mut leaf = Vec::new();
        for entry in self.iter(wtxn)? {
            let (item, values) = entry?;
            leaf.clear();
            encode_leaf::<ND>(&values, &mut leaf);
            slots.push(item, &leaf)?;
        }
        slots.write(self.db, wtxn, self.index)
    }

    /// The header of the index, checked against this writer: `None` when
    /// nothing was ever written to it. Another format is refused with
    /// [`Error::FormatVersion`], another distance with
    /// [`Error::DistanceMismatch`], other dimensions with
    /// [`Error::IndexDimensionMismatch`].
    pub(crate) fn header<'t>(&self, rtxn: &'t RoTxn) -> Result<Option<Header<'t>>> {
        self.check_dimensions()?;
        let index = self.index;
        let Some(header) = store::header(self.db, rtxn, index)? else { return Ok(None) };
        if header.distance != D::NAME {
            let found = header.distance.into_owned();
            return Err(Error::DistanceMismatch { index, expected: D::NAME, found });
        }
        if header.dimensions as usize != self.dimensions {
            let found = header.dimensions as usize;
            return Err(Error::IndexDimensionMismatch { index, expected: self.dimensions, found });
        }
        Ok(Some(header))
    }

    /// Writes the header if nothing was ever written to the index; checks
    /// it otherwise.
    pub(crate) fn ensure_header(&self, wtxn: &mut RwTxn) -> Result<()> {
        if self.header(wtxn)?.is_none() {
            self.write_header::<D>(wtxn)?;
        }
        Ok(())
    }

    /// Options for a build of this index; finish with [`Builder::build`].
    ///
    /// `rng` (any generator of rand 0.10) is drawn once, for the seed of
    /// the build: the same seed over the same items gives the same trees,
    /// byte for byte, whatever the number of threads. [`Builder::seed`]
    /// sets the seed itself.
    pub fn builder<R: Rng + ?Sized>(&self, rng: &mut R) -> Builder<'_, D> {
        Builder::new(self, rng.next_u64())
    }

    pub(crate) fn check_dimensions(&self) -> Result<()> {
        match self.dimensions {
            1..=MAX_DIMENSIONS => Ok(()),
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
