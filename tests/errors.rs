//! Every error a caller can provoke, matched by variant, and proof that a
//! failed or cancelled build loses nothing.

mod common;

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{MIB, TestEnv, build_index, data};
use roaring::RoaringBitmap;
use spinney::distances::{Cosine, Euclidean};
use spinney::format::{Key, KeyCodec, NodeMode};
use spinney::heed::types::Bytes;
use spinney::{Error, Reader, Writer};

fn raw(db: spinney::Database<'static, Euclidean>) -> spinney::heed::Database<'static, KeyCodec, Bytes> {
    db.remap_data_type::<Bytes>()
}

#[test]
fn wrong_dimensions_everywhere() {
    let test = TestEnv::new(16 * MIB);
    let db = test.database::<Euclidean>();
    let writer = Writer::<Euclidean>::new(db, 0, 3);
    let mut wtxn = test.env.write_txn().unwrap();
    let err = writer.add_item(&mut wtxn, 0, &[1.0, 2.0]).unwrap_err();
    assert!(matches!(err, Error::DimensionMismatch { expected: 3, received: 2 }), "{err}");
    let err = writer.append_item(&mut wtxn, 0, &[1.0; 4]).unwrap_err();
    assert!(matches!(err, Error::DimensionMismatch { expected: 3, received: 4 }), "{err}");
    writer.add_item(&mut wtxn, 0, &[1.0; 3]).unwrap();
    writer.builder(&mut common::rng(1)).build(&mut wtxn).unwrap();
    let reader = Reader::<Euclidean>::open(&wtxn, 0, db).unwrap();
    let err = reader.nns(1).by_vector(&wtxn, &[]).unwrap_err();
    assert!(matches!(err, Error::DimensionMismatch { expected: 3, received: 0 }), "{err}");
    assert!(err.to_string().contains("pass vectors of 3 values"), "{err}");
    // A writer with other dimensions cannot build over the index.
    let other = Writer::<Euclidean>::new(db, 0, 5);
    let err = other.builder(&mut common::rng(1)).build(&mut wtxn).unwrap_err();
    assert!(matches!(err, Error::IndexDimensionMismatch { index: 0, expected: 5, found: 3 }), "{err}");
}

#[test]
fn non_finite_values_are_refused() {
    let test = TestEnv::new(16 * MIB);
    let db = test.database::<Euclidean>();
    let writer = Writer::<Euclidean>::new(db, 0, 3);
    let mut wtxn = test.env.write_txn().unwrap();
    for (position, bad) in [(0, f32::NAN), (1, f32::INFINITY), (2, f32::NEG_INFINITY)] {
        let mut vector = [1.0; 3];
        vector[position] = bad;
        let err = writer.add_item(&mut wtxn, 0, &vector).unwrap_err();
        assert!(matches!(err, Error::NonFiniteValue { position: p, .. } if p == position), "{err}");
        let err = writer.append_item(&mut wtxn, 0, &vector).unwrap_err();
        assert!(matches!(err, Error::NonFiniteValue { .. }), "{err}");
    }
    assert!(writer.is_empty(&wtxn).unwrap(), "nothing was written");
    writer.add_item(&mut wtxn, 0, &[1.0; 3]).unwrap();
    writer.builder(&mut common::rng(1)).build(&mut wtxn).unwrap();
    let reader = Reader::<Euclidean>::open(&wtxn, 0, db).unwrap();
    let err = reader.nns(1).by_vector(&wtxn, &[0.0, f32::NAN, 0.0]).unwrap_err();
    assert!(matches!(err, Error::NonFiniteValue { position: 1, .. }), "{err}");
}

#[test]
fn zero_dimensions_are_refused() {
    let test = TestEnv::new(16 * MIB);
    let db = test.database::<Euclidean>();
    let writer = Writer::<Euclidean>::new(db, 0, 0);
    let mut wtxn = test.env.write_txn().unwrap();
    let err = writer.add_item(&mut wtxn, 0, &[]).unwrap_err();
    assert!(matches!(err, Error::InvalidDimensions { dimensions: 0 }), "{err}");
    let err = writer.builder(&mut common::rng(1)).build(&mut wtxn).unwrap_err();
    assert!(matches!(err, Error::InvalidDimensions { dimensions: 0 }), "{err}");
    assert!(matches!(writer.is_empty(&wtxn), Err(Error::InvalidDimensions { .. })));
}

#[test]
fn opening_an_index_never_built() {
    let test = TestEnv::new(16 * MIB);
    let db = test.database::<Euclidean>();
    let rtxn = test.env.read_txn().unwrap();
    let err = Reader::<Euclidean>::open(&rtxn, 9, db).unwrap_err();
    assert!(matches!(err, Error::NotBuilt { index: 9 }), "{err}");
    drop(rtxn);
    // Items without a build are not an index yet either.
    let mut wtxn = test.env.write_txn().unwrap();
    Writer::<Euclidean>::new(db, 9, 2).add_item(&mut wtxn, 1, &[1.0, 2.0]).unwrap();
    let err = Reader::<Euclidean>::open(&wtxn, 9, db).unwrap_err();
    assert!(matches!(err, Error::NotBuilt { index: 9 }), "{err}");
}

#[test]
fn opening_or_building_with_another_distance() {
    let test = TestEnv::new(16 * MIB);
    let db = test.database::<Euclidean>();
    let set = data::clustered(100, 1, 4, 1);
    build_index(&test, db, 0, &set.base, Some(2), 1);
    let cosine_db = test.database::<Euclidean>().remap_data_type::<spinney::format::Entries<Cosine>>();
    let rtxn = test.env.read_txn().unwrap();
    let err = Reader::<Cosine>::open(&rtxn, 0, cosine_db).unwrap_err();
    assert!(
        matches!(&err, Error::DistanceMismatch { index: 0, expected: "cosine", found } if found == "euclidean"),
        "{err}"
    );
    drop(rtxn);
    let mut wtxn = test.env.write_txn().unwrap();
    let err = Writer::<Cosine>::new(cosine_db, 0, 4).builder(&mut common::rng(1)).build(&mut wtxn).unwrap_err();
    assert!(matches!(err, Error::DistanceMismatch { .. }), "{err}");
}

#[test]
fn an_unknown_format_version() {
    let test = TestEnv::new(16 * MIB);
    let db = test.database::<Euclidean>();
    build_index(&test, db, 4, &data::clustered(50, 1, 4, 1).base, Some(2), 1);
    let header = Key { index: 4, mode: NodeMode::Metadata, id: 1 };
    // Format 2 stored the bare version here; a future format a longer
    // header: reads, builds, writes and distance changes refuse both.
    for (found, bytes) in [(2u32, 2u32.to_le_bytes().to_vec()), (7, [&7u32.to_le_bytes()[..], &[9; 12]].concat())] {
        let mut wtxn = test.env.write_txn().unwrap();
        raw(db).put(&mut wtxn, &header, &bytes).unwrap();
        let err = Reader::<Euclidean>::open(&wtxn, 4, db).unwrap_err();
        assert!(matches!(err, Error::FormatVersion { index: 4, found: f, supported: 6 } if f == found), "{err}");
        let writer = Writer::<Euclidean>::new(db, 4, 4);
        let err = writer.builder(&mut common::rng(1)).build(&mut wtxn).unwrap_err();
        assert!(matches!(err, Error::FormatVersion { found: f, .. } if f == found), "{err}");
        let err = writer.add_item(&mut wtxn, 60, &[1.0; 4]).unwrap_err();
        assert!(matches!(err, Error::FormatVersion { found: f, .. } if f == found), "{err}");
        let err = writer.del_item(&mut wtxn, 1).unwrap_err();
        assert!(matches!(err, Error::FormatVersion { found: f, .. } if f == found), "{err}");
        let err = writer.prepare_changing_distance::<Cosine>(&mut wtxn).unwrap_err();
        assert!(matches!(err, Error::FormatVersion { found: f, .. } if f == found), "{err}");
    }
    let mut wtxn = test.env.write_txn().unwrap();
    raw(db).put(&mut wtxn, &header, &[1, 0]).unwrap();
    let err = Reader::<Euclidean>::open(&wtxn, 4, db).unwrap_err();
    assert!(matches!(err, Error::Corrupted { key, .. } if key == header), "{err}");
    // A built index without its header is damaged, not unbuilt; the next
    // build writes the header again.
    raw(db).delete(&mut wtxn, &header).unwrap();
    let err = Reader::<Euclidean>::open(&wtxn, 4, db).unwrap_err();
    assert!(matches!(err, Error::Corrupted { key, .. } if key == header), "{err}");
    Writer::<Euclidean>::new(db, 4, 4).builder(&mut common::rng(1)).build(&mut wtxn).unwrap();
    let reader = Reader::<Euclidean>::open(&wtxn, 4, db).unwrap();
    reader.check(&wtxn).unwrap();
    assert_eq!(reader.n_items(), 50);
}

/// Found by a review: a writer with another dimension count or distance
/// wrote vectors a built index then failed to read.
#[test]
fn a_writer_that_does_not_match_the_index_changes_nothing() {
    let test = TestEnv::new(16 * MIB);
    let db = test.database::<Euclidean>();
    let set = data::clustered(100, 3, 3, 1);
    build_index(&test, db, 0, &set.base, Some(2), 1);
    // Before any build too: the first item fixes the index's shape.
    let writer = Writer::<Euclidean>::new(db, 1, 3);
    let mut wtxn = test.env.write_txn().unwrap();
    writer.add_item(&mut wtxn, 0, &[1.0; 3]).unwrap();
    wtxn.commit().unwrap();

    let before = test.dump();
    let mut wtxn = test.env.write_txn().unwrap();
    for index in [0, 1] {
        let wide = Writer::<Euclidean>::new(db, index, 5);
        let err = wide.add_item(&mut wtxn, 7, &[1.0; 5]).unwrap_err();
        assert!(matches!(err, Error::IndexDimensionMismatch { expected: 5, found: 3, .. }), "{err}");
        let err = wide.append_item(&mut wtxn, 1_000, &[1.0; 5]).unwrap_err();
        assert!(matches!(err, Error::IndexDimensionMismatch { .. }), "{err}");
        assert!(matches!(wide.del_item(&mut wtxn, 7), Err(Error::IndexDimensionMismatch { .. })));
        assert!(matches!(wide.clear(&mut wtxn), Err(Error::IndexDimensionMismatch { .. })));
        assert!(matches!(wide.item_vector(&wtxn, 0), Err(Error::IndexDimensionMismatch { .. })));
        let cosine = Writer::<Cosine>::new(db.remap_data_type(), index, 3);
        let err = cosine.add_item(&mut wtxn, 7, &[1.0; 3]).unwrap_err();
        assert!(matches!(err, Error::DistanceMismatch { expected: "cosine", .. }), "{err}");
        assert!(matches!(cosine.del_item(&mut wtxn, 7), Err(Error::DistanceMismatch { .. })));
    }
    wtxn.commit().unwrap();
    assert_eq!(test.dump(), before, "a refused writer wrote nothing");
    let rtxn = test.env.read_txn().unwrap();
    let reader = Reader::<Euclidean>::open(&rtxn, 0, db).unwrap();
    reader.check(&rtxn).unwrap();
    assert_eq!(reader.nns(1).by_vector(&rtxn, set.queries.get(0)).unwrap().len(), 1);
}

/// Builds a small index, lets `damage` change the raw database, and returns
/// what opening, checking and searching then say.
fn after_damage(
    damage: impl FnOnce(&mut spinney::heed::RwTxn, spinney::heed::Database<'static, KeyCodec, Bytes>),
) -> Vec<Error> {
    let test = TestEnv::new(16 * MIB);
    let db = test.database::<Euclidean>();
    let set = data::clustered(400, 3, 8, 1);
    build_index(&test, db, 0, &set.base, Some(3), 1);
    let mut wtxn = test.env.write_txn().unwrap();
    damage(&mut wtxn, raw(db));
    common::read_errors(&wtxn, db, &set, 3)
}

fn assert_corrupted(errors: &[Error], expected: Key) {
    assert!(!errors.is_empty(), "the damage went unnoticed");
    for err in errors {
        assert!(
            matches!(err, Error::Corrupted { key, .. } if *key == expected),
            "expected corruption at {expected}, got {err}"
        );
    }
}

/// The key of chunk `chunk` of tree `tree` of index 0.
fn tree_chunk(tree: u32, chunk: u32) -> Key {
    Key { index: 0, mode: NodeMode::Tree, id: tree << 20 | chunk }
}

#[test]
fn corrupted_bytes_are_errors_with_their_key() {
    // The first tree overwritten with garbage: a node of unknown kind.
    let chunk = tree_chunk(0, 0);
    let errors = after_damage(|wtxn, db| db.put(wtxn, &chunk, &[3, 1, 2, 3, 7, 7, 7, 7]).unwrap());
    assert_corrupted(&errors, chunk);
    // The last tree's chunk deleted.
    let errors = after_damage(|wtxn, db| db.delete(wtxn, &tree_chunk(2, 0)).map(drop).unwrap());
    assert_corrupted(&errors, tree_chunk(2, 0));
    // The root (the last node, a split of 32 bytes at 8 dimensions) made
    // to point to itself: a cycle must not loop.
    let errors = after_damage(|wtxn, db| {
        let mut value = db.get(wtxn, &chunk).unwrap().unwrap().to_vec();
        let root = value.len() - 32;
        assert_eq!(value[root], 1, "the root is a split");
        value[root + 4..root + 8].copy_from_slice(&(root as u32 / 4).to_le_bytes());
        db.put(wtxn, &chunk, &value).unwrap();
    });
    assert!(errors.iter().all(|e| matches!(e, Error::Corrupted { .. })), "{errors:?}");
    assert!(!errors.is_empty());
    // An item's entry truncated.
    let item = Key { index: 0, mode: NodeMode::Item, id: 7 };
    let errors = after_damage(|wtxn, db| {
        let value = db.get(wtxn, &item).unwrap().unwrap().to_vec();
        db.put(wtxn, &item, &value[..value.len() - 1]).unwrap();
    });
    assert_corrupted(&errors, item);
    // The slots truncated.
    let slots = Key { index: 0, mode: NodeMode::Slots, id: 0 };
    let errors = after_damage(|wtxn, db| {
        let value = db.get(wtxn, &slots).unwrap().unwrap().to_vec();
        db.put(wtxn, &slots, &value[..value.len() - 4]).unwrap();
    });
    assert_corrupted(&errors, slots);
    // The metadata truncated.
    let metadata = Key { index: 0, mode: NodeMode::Metadata, id: 0 };
    let errors = after_damage(|wtxn, db| {
        let value = db.get(wtxn, &metadata).unwrap().unwrap().to_vec();
        db.put(wtxn, &metadata, &value[..value.len() - 1]).unwrap();
    });
    assert_corrupted(&errors, metadata);
    // A stray chunk of a tree that does not exist.
    let stray = tree_chunk(9, 0);
    let errors = after_damage(|wtxn, db| db.put(wtxn, &stray, &[0, 0, 0, 0]).unwrap());
    assert_corrupted(&errors, stray);
}

/// `check` recomputes every code from its vector: a vector changed behind
/// the build's back (its codes in the runs are the old vector's) is found,
/// though queries would only rank with the codes.
#[test]
fn check_finds_a_code_that_is_not_its_vectors() {
    let test = TestEnv::new(64 * MIB);
    let db = test.database::<Euclidean>();
    let set = data::clustered(300, 1, 128, 1);
    build_index(&test, db, 0, &set.base, Some(2), 1);
    let slots = Key { index: 0, mode: NodeMode::Slots, id: 0 };
    let mut wtxn = test.env.write_txn().unwrap();
    Reader::<Euclidean>::open(&wtxn, 0, db).unwrap().check(&wtxn).unwrap();
    let mut value = raw(db).get(&wtxn, &slots).unwrap().unwrap().to_vec();
    // After the chunk's count, slot 5's record: its id, then its vector.
    let first = 4 + 5 * (4 + 128 * 4) + 4;
    value[first..first + 4].copy_from_slice(&1_000f32.to_le_bytes());
    raw(db).put(&mut wtxn, &slots, &value).unwrap();
    let err = Reader::<Euclidean>::open(&wtxn, 0, db).unwrap().check(&wtxn).unwrap_err();
    let partitions = Key { index: 0, mode: NodeMode::Partitions, id: 0 };
    let found = matches!(&err, Error::Corrupted { key, reason } if *key == partitions && reason.contains("code"));
    assert!(found, "{err}");
}

/// Damaged partitions and runs: a code that is not its slot's is found by
/// `check`, a slot past the end makes queries answer `Corrupted`, and a
/// partition placed outside its chunk is refused when the reader opens.
#[test]
fn damaged_partitions_and_runs_are_errors() {
    let test = TestEnv::new(64 * MIB);
    let db = test.database::<Euclidean>();
    let set = data::clustered(300, 1, 128, 1);
    build_index(&test, db, 0, &set.base, Some(2), 1);
    let run = Key { index: 0, mode: NodeMode::Runs, id: 0 };
    let partitions = Key { index: 0, mode: NodeMode::Partitions, id: 0 };
    let query = set.queries.get(0);
    let few = NonZeroUsize::new(40).unwrap();

    let mut wtxn = test.env.write_txn().unwrap();
    Reader::<Euclidean>::open(&wtxn, 0, db).unwrap().check(&wtxn).unwrap();
    let original = raw(db).get(&wtxn, &run).unwrap().unwrap().to_vec();
    let lanes = u32::from_le_bytes(original[..4].try_into().unwrap()) as usize;
    // A bit of lane 3's code, after the lane count and the lanes' slots.
    let mut value = original.clone();
    value[4 + 4 * lanes + 3] ^= 0b100;
    raw(db).put(&mut wtxn, &run, &value).unwrap();
    let err = Reader::<Euclidean>::open(&wtxn, 0, db).unwrap().check(&wtxn).unwrap_err();
    assert!(matches!(&err, Error::Corrupted { key, reason } if *key == partitions && reason.contains("code")), "{err}");

    // Every lane's slot past the end.
    let mut value = original.clone();
    value[4..4 + 4 * lanes].fill(0x7f);
    raw(db).put(&mut wtxn, &run, &value).unwrap();
    let reader = Reader::<Euclidean>::open(&wtxn, 0, db).unwrap();
    let err = reader.nns(10).search_k(few).by_vector(&wtxn, query).unwrap_err();
    assert!(matches!(&err, Error::Corrupted { key, .. } if *key == partitions), "{err}");
    drop(reader);

    // The first partition's lanes past its chunk.
    raw(db).put(&mut wtxn, &run, &original).unwrap();
    let mut value = raw(db).get(&wtxn, &partitions).unwrap().unwrap().to_vec();
    value[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    raw(db).put(&mut wtxn, &partitions, &value).unwrap();
    let err = Reader::<Euclidean>::open(&wtxn, 0, db).unwrap_err();
    assert!(matches!(&err, Error::Corrupted { key, .. } if *key == partitions), "{err}");
}

/// A directory that sends an item to another's slot: a query whose small
/// filter is found through it answers `Corrupted`, never an item outside
/// the filter.
#[test]
fn a_directory_pointing_to_the_wrong_slot_is_an_error() {
    let test = TestEnv::new(64 * MIB);
    let db = test.database::<Euclidean>();
    let set = data::clustered(300, 1, 128, 1);
    build_index(&test, db, 0, &set.base, Some(2), 1);
    let directory = Key { index: 0, mode: NodeMode::Directory, id: 0 };
    let mut wtxn = test.env.write_txn().unwrap();
    let mut value = raw(db).get(&wtxn, &directory).unwrap().unwrap().to_vec();
    // Item 0 (rank 0) sent to the slot of item 1 (rank 1).
    let (first, second) = value.split_at_mut(4);
    first.copy_from_slice(&second[..4]);
    raw(db).put(&mut wtxn, &directory, &value).unwrap();
    let reader = Reader::<Euclidean>::open(&wtxn, 0, db).unwrap();
    let only_zero: RoaringBitmap = [0].into_iter().collect();
    let err = reader.nns(1).candidates(&only_zero).by_vector(&wtxn, set.base.get(0)).unwrap_err();
    assert!(matches!(&err, Error::Corrupted { key, .. } if *key == directory), "{err}");
    let err = reader.check(&wtxn).unwrap_err();
    assert!(matches!(&err, Error::Corrupted { key, .. } if key.mode == NodeMode::Directory), "{err}");
}

#[test]
fn a_full_map_is_an_error_and_loses_nothing() {
    let test = TestEnv::new(MIB);
    let db = test.database::<Euclidean>();
    let small = data::clustered(50, 1, 8, 1);
    build_index(&test, db, 0, &small.base, Some(2), 1);

    let writer = Writer::<Euclidean>::new(db, 1, 64);
    let mut wtxn = test.env.write_txn().unwrap();
    let big = data::clustered(10_000, 1, 64, 2);
    let err = (0..big.base.len()).try_for_each(|i| writer.add_item(&mut wtxn, i as u32, big.base.get(i))).unwrap_err();
    assert!(matches!(err, Error::MapFull), "{err}");
    assert!(err.to_string().contains("larger map_size"));
    wtxn.abort();

    // The committed index is intact; a larger map takes the load.
    let test = test.reopen(64 * MIB);
    let db = test.database::<Euclidean>();
    let rtxn = test.env.read_txn().unwrap();
    let reader = Reader::<Euclidean>::open(&rtxn, 0, db).unwrap();
    reader.check(&rtxn).unwrap();
    assert_eq!(reader.n_items(), 50);
    drop(rtxn);
    build_index(&test, db, 1, &big.base, Some(2), 2);
}

#[test]
fn a_full_map_during_the_build() {
    // Room for the items but not for the trees.
    let test = TestEnv::new(3 * MIB);
    let db = test.database::<Euclidean>();
    let set = data::clustered(5_000, 1, 64, 3);
    let writer = Writer::<Euclidean>::new(db, 0, 64);
    let mut wtxn = test.env.write_txn().unwrap();
    common::add_items(&writer, &mut wtxn, &set.base);
    let err = writer.builder(&mut common::rng(1)).n_trees(200).build(&mut wtxn).unwrap_err();
    assert!(matches!(err, Error::MapFull), "{err}");
}

#[test]
fn a_cancelled_build_keeps_the_committed_index() {
    let test = TestEnv::new(64 * MIB);
    let db = test.database::<Euclidean>();
    let set = data::clustered(2_000, 5, 16, 5);
    build_index(&test, db, 0, &set.base, Some(4), 5);
    let before: Vec<_> = {
        let rtxn = test.env.read_txn().unwrap();
        let reader = Reader::<Euclidean>::open(&rtxn, 0, db).unwrap();
        (0..5).map(|q| reader.nns(10).by_vector(&rtxn, set.queries.get(q)).unwrap()).collect()
    };
    let writer = Writer::<Euclidean>::new(db, 0, 16);
    // Cancel after 0, 1, 10 and 100 polls: before, during and late in growth.
    for polls in [0, 1, 10, 100] {
        let mut wtxn = test.env.write_txn().unwrap();
        writer.add_item(&mut wtxn, 5000, &[0.5; 16]).unwrap();
        writer.del_item(&mut wtxn, 3).unwrap();
        let count = AtomicUsize::new(0);
        let err = writer
            .builder(&mut common::rng(2))
            .n_trees(10)
            .cancel(|| count.fetch_add(1, Ordering::Relaxed) >= polls)
            .build(&mut wtxn)
            .unwrap_err();
        assert!(matches!(err, Error::BuildCancelled), "{err}");
        wtxn.abort();
        let rtxn = test.env.read_txn().unwrap();
        let reader = Reader::<Euclidean>::open(&rtxn, 0, db).unwrap();
        reader.check(&rtxn).unwrap();
        let after: Vec<_> = (0..5).map(|q| reader.nns(10).by_vector(&rtxn, set.queries.get(q)).unwrap()).collect();
        assert_eq!(after, before);
    }
}

#[test]
fn a_build_cancelled_in_its_shared_passes_writes_nothing() {
    // 2,500 vectors of 4 KiB: the top levels are split in passes shared by
    // the trees, which come first in the growth and poll the callback.
    let test = TestEnv::new(64 * MIB);
    let db = test.database::<Euclidean>();
    let set = data::clustered(2_500, 1, 1024, 6);
    let writer = Writer::<Euclidean>::new(db, 0, 1024);
    let mut wtxn = test.env.write_txn().unwrap();
    common::add_items(&writer, &mut wtxn, &set.base);
    wtxn.commit().unwrap();
    let polls_of_a_build = AtomicUsize::new(0);
    let mut wtxn = test.env.write_txn().unwrap();
    let cancel = || polls_of_a_build.fetch_add(1, Ordering::Relaxed) == usize::MAX;
    writer.builder(&mut common::rng(3)).n_trees(3).cancel(cancel).build(&mut wtxn).unwrap();
    wtxn.abort();
    let polls_of_a_build = polls_of_a_build.into_inner();
    for polls in (0..12).chain([polls_of_a_build / 2, polls_of_a_build - 1]) {
        let mut wtxn = test.env.write_txn().unwrap();
        let count = AtomicUsize::new(0);
        let cancel = || count.fetch_add(1, Ordering::Relaxed) >= polls;
        let err = writer.builder(&mut common::rng(3)).n_trees(3).cancel(cancel).build(&mut wtxn).unwrap_err();
        assert!(matches!(err, Error::BuildCancelled), "{err}");
        assert!(matches!(Reader::<Euclidean>::open(&wtxn, 0, db), Err(Error::NotBuilt { index: 0 })), "polls {polls}");
        assert_eq!(writer.iter(&wtxn).unwrap().count(), 2_500);
        assert!(writer.need_build(&wtxn).unwrap());
    }
}

#[test]
fn a_missing_temp_directory() {
    let test = TestEnv::new(16 * MIB);
    let db = test.database::<Euclidean>();
    let mut writer = Writer::<Euclidean>::new(db, 0, 4);
    let missing = test.dir.path().join("no-such-dir");
    writer.set_tmpdir(&missing);
    let mut wtxn = test.env.write_txn().unwrap();
    for i in 0..100 {
        writer.add_item(&mut wtxn, i, &[i as f32, 1.0, 2.0, 3.0]).unwrap();
    }
    let err = writer.builder(&mut common::rng(1)).build(&mut wtxn).unwrap_err();
    assert!(matches!(&err, Error::TempFile { dir: Some(dir), .. } if *dir == missing), "{err}");
    std::fs::create_dir(&missing).unwrap();
    writer.builder(&mut common::rng(1)).build(&mut wtxn).unwrap();
    Reader::<Euclidean>::open(&wtxn, 0, db).unwrap().check(&wtxn).unwrap();
}
