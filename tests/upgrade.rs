//! Upgrading in place databases written by the last releases of formats 2,
//! 3, 4 and 5.
//!
//! `tests/fixtures/format-2/data.mdb` was written by spinney at commit
//! d67bb64 (format 2): index 0, Euclidean, items 0..300 of 16 dimensions,
//! 3 trees, then, committed without a build, item 7 deleted, item 8
//! replaced and item 300 added; index 1, cosine, items 1000..1200 of 8
//! dimensions, 2 trees. Every vector is `vector(i, d)` below.
//!
//! `tests/fixtures/format-3/data.mdb` was written by spinney at commit
//! 96c032d (format 3): index 0, cosine, items 0..300 of 128 dimensions
//! (with codes), 3 trees, then, committed without a build, item 7 deleted,
//! item 8 replaced by `vector(9008, 128)` and item 300 added.
//!
//! `tests/fixtures/format-4/data.mdb` was written by spinney at commit
//! f467233 (format 4) the same way: index 0, cosine, items 0..300 of 128
//! dimensions, 3 trees, then item 7 deleted, item 8 replaced by
//! `vector(9008, 128)` and item 300 added, committed without a build.
//!
//! `tests/fixtures/format-5/data.mdb` was written by spinney at commit
//! 0620433 (format 5) the same way (index 0, cosine, items 0..300 of 128
//! dimensions, 3 trees, seed 1, then item 7 deleted, item 8 replaced by
//! `vector(9008, 128)` and item 300 added, committed without a build).

mod common;

use std::collections::BTreeMap;
use std::num::NonZeroUsize;

use common::{MIB, TestEnv, data};
use spinney::distances::{Cosine, Euclidean};
use spinney::{Distance, Error, Reader, Writer};

/// The vectors the fixture was written with.
fn vector(i: u32, dimensions: usize) -> Vec<f32> {
    (0..dimensions).map(|j| ((i as usize * 31 + j * 17) % 97) as f32 / 97.0 - 0.5).collect()
}

/// A copy of the fixture of format `format` in a fresh directory.
fn fixture(format: u32) -> TestEnv {
    let dir = tempfile::tempdir().unwrap();
    let source =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/format-{format}/data.mdb"));
    std::fs::copy(source, dir.path().join("data.mdb")).unwrap();
    TestEnv::from_dir(dir, 16 * MIB)
}

/// Upgrades and builds one index, then checks that it holds exactly
/// `expected` and answers like brute force over it.
fn upgrade_and_build<D: Distance>(test: &TestEnv, index: u16, dimensions: usize, expected: &BTreeMap<u32, Vec<f32>>) {
    let db = test.database::<D>();
    let rtxn = test.env.read_txn().unwrap();
    let err = Reader::<D>::open(&rtxn, index, db).unwrap_err();
    assert!(matches!(err, Error::FormatVersion { found: 2..=5, supported: 6, .. }), "{err}");
    drop(rtxn);

    let mut wtxn = test.env.write_txn().unwrap();
    let writer = Writer::<D>::new(db, index, dimensions);
    assert!(matches!(writer.add_item(&mut wtxn, 0, &vec![0.0; dimensions]), Err(Error::FormatVersion { .. })));
    assert!(writer.upgrade(&mut wtxn).unwrap(), "an index of an older format is converted");
    assert!(!writer.upgrade(&mut wtxn).unwrap(), "a second upgrade has nothing to do");
    assert!(matches!(Reader::<D>::open(&wtxn, index, db), Err(Error::NotBuilt { .. })));
    writer.builder(&mut common::rng(3)).n_trees(3).build(&mut wtxn).unwrap();
    wtxn.commit().unwrap();

    let rtxn = test.env.read_txn().unwrap();
    let reader = Reader::<D>::open(&rtxn, index, db).unwrap();
    reader.check(&rtxn).unwrap();
    assert!(reader.pending_changes().is_empty());
    assert_eq!(reader.item_ids().iter().collect::<Vec<_>>(), expected.keys().copied().collect::<Vec<_>>());
    for (&id, values) in expected {
        assert_eq!(reader.item_vector(&rtxn, id).unwrap().as_ref(), Some(values), "item {id}");
    }
    let all = NonZeroUsize::new(expected.len()).unwrap();
    for query in [vector(5_000, dimensions), vector(5_001, dimensions)] {
        let found = reader.nns(5).search_k(all).rerank(all).by_vector(&rtxn, &query).unwrap();
        let mut exact: Vec<(f32, u32)> =
            expected.iter().map(|(&id, v)| (data::exact_distance(D::NAME, &query, v), id)).collect();
        exact.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for ((id, _), (distance, _)) in found.iter().zip(&exact) {
            let stored = data::exact_distance(D::NAME, &query, &expected[id]);
            assert!((stored - distance).abs() < 1e-5, "item {id} at {stored}, exact {distance}");
        }
    }
}

#[test]
fn a_format_2_database_is_upgraded_in_place() {
    let test = fixture(2);
    let mut euclidean: BTreeMap<u32, Vec<f32>> = (0..=300).map(|i| (i, vector(i, 16))).collect();
    euclidean.remove(&7);
    euclidean.insert(8, vector(1008, 16));
    upgrade_and_build::<Euclidean>(&test, 0, 16, &euclidean);
    let cosine: BTreeMap<u32, Vec<f32>> = (0..200).map(|i| (1_000 + i, vector(i, 8))).collect();
    upgrade_and_build::<Cosine>(&test, 1, 8, &cosine);
}

#[test]
fn a_format_3_database_is_upgraded_in_place() {
    a_slotted_database_is_upgraded_in_place(3);
}

#[test]
fn a_format_4_database_is_upgraded_in_place() {
    a_slotted_database_is_upgraded_in_place(4);
}

#[test]
fn a_format_5_database_is_upgraded_in_place() {
    a_slotted_database_is_upgraded_in_place(5);
}

/// Formats 3 and 4 kept built vectors in slot chunks of their own layout,
/// and changed ones in their entries; format 5 in the slots format 6
/// keeps, with runs that padded each partition.
fn a_slotted_database_is_upgraded_in_place(format: u32) {
    let test = fixture(format);
    let mut cosine: BTreeMap<u32, Vec<f32>> = (0..=300).map(|i| (i, vector(i, 128))).collect();
    cosine.remove(&7);
    cosine.insert(8, vector(9_008, 128));
    upgrade_and_build::<Cosine>(&test, 0, 128, &cosine);
    // The new build reads its partitions.
    let rtxn = test.env.read_txn().unwrap();
    let reader = Reader::<Cosine>::open(&rtxn, 0, test.database::<Cosine>()).unwrap();
    let mut searcher = spinney::Searcher::new();
    let query = vector(5_000, 128);
    reader.nns(3).search_k(NonZeroUsize::new(64).unwrap()).by_vector_with(&rtxn, &query, &mut searcher).unwrap();
    assert!(searcher.stats().nodes > 0, "{:?}", searcher.stats());
}

#[test]
fn an_upgrade_refuses_another_distance_or_dimension_count() {
    let test = fixture(2);
    let db = test.database::<Euclidean>();
    let mut wtxn = test.env.write_txn().unwrap();
    let err = Writer::<Cosine>::new(db.remap_data_type(), 0, 16).upgrade(&mut wtxn).unwrap_err();
    assert!(matches!(err, Error::DistanceMismatch { expected: "cosine", .. }), "{err}");
    let err = Writer::<Euclidean>::new(db, 0, 8).upgrade(&mut wtxn).unwrap_err();
    assert!(matches!(err, Error::IndexDimensionMismatch { expected: 8, found: 16, .. }), "{err}");
    assert!(!Writer::<Euclidean>::new(db, 9, 8).upgrade(&mut wtxn).unwrap(), "an index never written");
}
