//! Faults during a build (cancellation at every step, a panicking worker, a
//! bad temporary directory, a full map) and bytes corrupted at random: each
//! gives its error, never a panic or a hang, and the committed index stays as
//! it was.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::{MIB, TestEnv, build_index, data};
use rand::{RngExt, SeedableRng};
use spinney::distances::Euclidean;
use spinney::format::NodeMode;
use spinney::heed::types::Bytes;
use spinney::{Error, MainStep, Reader, Writer, WriterProgress};

/// The answers of index 0 to the first queries of `set`.
fn answers(test: &TestEnv, set: &data::Dataset) -> Vec<Vec<(u32, f32)>> {
    let db = test.database::<Euclidean>();
    let rtxn = test.env.read_txn().unwrap();
    let reader = Reader::<Euclidean>::open(&rtxn, 0, db).unwrap();
    reader.check(&rtxn).unwrap();
    (0..5).map(|q| reader.nns(10).by_vector(&rtxn, set.queries.get(q)).unwrap()).collect()
}

/// Makes some changes and starts a build with these callbacks, which must
/// make it fail; returns the error and the transaction, still open.
fn sabotaged_build<'e>(
    test: &'e TestEnv,
    n_trees: usize,
    cancel: impl Fn() -> bool + Sync + Send,
    progress: impl Fn(WriterProgress) + Sync + Send,
) -> (Error, spinney::heed::RwTxn<'e>) {
    let db = test.database::<Euclidean>();
    let writer = Writer::<Euclidean>::new(db, 0, 16);
    let mut wtxn = test.env.write_txn().unwrap();
    writer.add_item(&mut wtxn, 9_999, &[0.25; 16]).unwrap();
    writer.del_item(&mut wtxn, 17).unwrap();
    let mut rng = common::rng(3);
    let err = writer.builder(&mut rng).n_trees(n_trees).cancel(cancel).progress(progress).build(&mut wtxn).unwrap_err();
    (err, wtxn)
}

#[test]
fn cancelling_at_every_step_keeps_the_committed_index() {
    let set = data::clustered(2_000, 5, 16, 1);
    let test = TestEnv::new(64 * MIB);
    build_index(&test, test.database::<Euclidean>(), 0, &set.base, Some(4), 1);
    let before = answers(&test, &set);
    for step in enum_iterator::all::<MainStep>() {
        // 5 trees: the four kept ones are updated and one more is grown, so every step runs.
        for commit_anyway in [false, true] {
            let reached = AtomicBool::new(false);
            let (err, wtxn) = sabotaged_build(
                &test,
                5,
                || reached.load(Ordering::Relaxed),
                |p| {
                    reached.fetch_or(p.main == step, Ordering::Relaxed);
                },
            );
            assert!(matches!(err, Error::BuildCancelled), "{step:?}: {err}");
            if !commit_anyway {
                wtxn.abort();
                assert_eq!(answers(&test, &set), before, "cancelled at {step:?}");
                continue;
            }
            // Committing a cancelled build never leaves an index that opens
            // and answers from a half-written forest: either the last build
            // with the changes pending, or no index until the next build.
            wtxn.commit().unwrap();
            let db = test.database::<Euclidean>();
            let rtxn = test.env.read_txn().unwrap();
            match Reader::<Euclidean>::open(&rtxn, 0, db) {
                Ok(reader) => {
                    assert!(step <= MainStep::RemovingOldTrees, "{step:?}");
                    reader.check(&rtxn).unwrap();
                    assert_eq!(reader.pending_changes().len(), 2);
                }
                Err(Error::NotBuilt { index: 0 }) => assert!(step >= MainStep::WritingNodes, "{step:?}"),
                Err(other) => panic!("{step:?}: {other}"),
            }
            drop(rtxn);
            // The next build repairs either state.
            let mut wtxn = test.env.write_txn().unwrap();
            let writer = Writer::<Euclidean>::new(db, 0, 16);
            writer.del_item(&mut wtxn, 9_999).unwrap();
            writer.add_item(&mut wtxn, 17, set.base.get(17)).unwrap();
            writer.builder(&mut common::rng(1)).n_trees(4).build(&mut wtxn).unwrap();
            Reader::<Euclidean>::open(&wtxn, 0, db).unwrap().check(&wtxn).unwrap();
            wtxn.commit().unwrap();
        }
    }
}

/// A first build cancelled at each of its progress reports in turn, and its
/// transaction committed anyway, loses no item: the next build finds every
/// vector in its slot.
#[test]
fn a_fresh_build_cancelled_anywhere_and_committed_loses_nothing() {
    cancelled_anywhere_and_committed(false);
}

/// Found by a review (issue 20): a full rebuild of a built index (a new
/// `split_after`) cancelled while writing, then committed, lost every item,
/// because the build deleted the slots before writing the new ones. Builds
/// no longer write slots: every report, cancelled and committed, keeps them.
#[test]
fn a_rebuild_cancelled_anywhere_and_committed_loses_nothing() {
    cancelled_anywhere_and_committed(true);
}

/// Adds a set of items (built and committed first when `built`, with one
/// more item after), then cancels a build with a new `split_after` at each
/// of its progress reports in turn, commits, builds again and checks that
/// every item is there with its vector.
fn cancelled_anywhere_and_committed(built: bool) {
    let set = data::clustered(600, 5, 16, 2);
    let last = set.base.len() as u32;
    for reports in 0.. {
        let test = TestEnv::new(64 * MIB);
        let db = test.database::<Euclidean>();
        let writer = Writer::<Euclidean>::new(db, 0, 16);
        let mut wtxn = test.env.write_txn().unwrap();
        common::add_items(&writer, &mut wtxn, &set.base);
        if built {
            writer.builder(&mut common::rng(3)).n_trees(3).build(&mut wtxn).unwrap();
            wtxn.commit().unwrap();
            wtxn = test.env.write_txn().unwrap();
            writer.add_item(&mut wtxn, last, &[0.5; 16]).unwrap();
        }
        let seen = AtomicUsize::new(0);
        let result = writer
            .builder(&mut common::rng(4))
            .n_trees(3)
            .split_after(8)
            .progress(|_| {
                seen.fetch_add(1, Ordering::Relaxed);
            })
            .cancel(|| seen.load(Ordering::Relaxed) > reports)
            .build(&mut wtxn);
        let finished = match result {
            Ok(()) => true,
            Err(Error::BuildCancelled) => false,
            Err(other) => panic!("after {reports} reports: {other}"),
        };
        wtxn.commit().unwrap();
        let mut wtxn = test.env.write_txn().unwrap();
        writer.builder(&mut common::rng(5)).n_trees(3).build(&mut wtxn).unwrap();
        let reader = Reader::<Euclidean>::open(&wtxn, 0, db).unwrap();
        reader.check(&wtxn).unwrap();
        assert_eq!(reader.n_items(), set.base.len() as u64 + u64::from(built), "after {reports} reports");
        for i in 0..set.base.len() {
            let vector = reader.item_vector(&wtxn, i as u32).unwrap();
            assert_eq!(vector.as_deref(), Some(set.base.get(i)), "item {i} after {reports} reports");
        }
        if built {
            assert_eq!(reader.item_vector(&wtxn, last).unwrap(), Some(vec![0.5; 16]), "after {reports} reports");
        }
        drop(reader);
        wtxn.commit().unwrap();
        if finished {
            assert!(reports > 5, "the build reported progress only {reports} times");
            break;
        }
    }
}

#[test]
fn a_panicking_worker_becomes_an_error() {
    let set = data::clustered(2_000, 5, 16, 1);
    let test = TestEnv::new(64 * MIB);
    build_index(&test, test.database::<Euclidean>(), 0, &set.base, Some(4), 1);
    let before = answers(&test, &set);
    for polls in [0, 3, 50] {
        let count = AtomicUsize::new(0);
        let cancel = || {
            if count.fetch_add(1, Ordering::Relaxed) == polls {
                panic!("worker trouble");
            }
            false
        };
        let (err, wtxn) = sabotaged_build(&test, 6, cancel, |_| ());
        assert!(matches!(&err, Error::BuildPanicked { message } if message == "worker trouble"), "{err}");
        wtxn.abort();
        assert_eq!(answers(&test, &set), before);
    }
}

#[test]
fn a_temporary_directory_that_is_a_file() {
    let test = TestEnv::new(16 * MIB);
    let db = test.database::<Euclidean>();
    let mut writer = Writer::<Euclidean>::new(db, 0, 2);
    let file = test.dir.path().join("not-a-directory");
    std::fs::write(&file, b"").unwrap();
    writer.set_tmpdir(&file);
    let mut wtxn = test.env.write_txn().unwrap();
    for i in 0..100 {
        writer.add_item(&mut wtxn, i, &[i as f32, 1.0]).unwrap();
    }
    let err = writer.builder(&mut common::rng(1)).build(&mut wtxn).unwrap_err();
    assert!(matches!(&err, Error::TempFile { dir: Some(dir), .. } if *dir == file), "{err}");
}

#[test]
fn a_map_too_small_for_the_build_then_a_larger_one() {
    let test = TestEnv::new(4 * MIB);
    let set = data::clustered(5_000, 5, 64, 3);
    let small = data::clustered(50, 5, 64, 4);
    build_index(&test, test.database::<Euclidean>(), 0, &small.base, Some(2), 1);
    let before = answers(&test, &small);
    let fill = |test: &TestEnv| -> Result<(), Error> {
        let db = test.database::<Euclidean>();
        let writer = Writer::<Euclidean>::new(db, 0, 64);
        let mut wtxn = test.env.write_txn().unwrap();
        for i in 0..set.base.len() {
            writer.add_item(&mut wtxn, 100 + i as u32, set.base.get(i))?;
        }
        writer.builder(&mut common::rng(1)).n_trees(60).build(&mut wtxn)?;
        wtxn.commit()?;
        Ok(())
    };
    let err = fill(&test).unwrap_err();
    assert!(matches!(err, Error::MapFull), "{err}");
    assert_eq!(answers(&test, &small), before);
    let test = test.reopen(256 * MIB);
    fill(&test).unwrap();
    let db = test.database::<Euclidean>();
    let rtxn = test.env.read_txn().unwrap();
    let reader = Reader::<Euclidean>::open(&rtxn, 0, db).unwrap();
    reader.check(&rtxn).unwrap();
    assert_eq!(reader.n_items(), 5_050);
}

/// Flips or truncates random stored values, then opens, checks, searches and
/// builds: everything answers, with `Corrupted` where it notices, and never
/// panics or loops.
#[test]
fn random_corruption_never_panics() {
    let set = data::clustered(600, 4, 8, 5);
    let mut rng = rand::rngs::StdRng::seed_from_u64(common::seed(21));
    let mut noticed = 0;
    for round in 0..60 {
        let test = TestEnv::new(16 * MIB);
        let db = test.database::<Euclidean>();
        build_index(&test, db, 0, &set.base, Some(3), round);
        let raw = db.remap_data_type::<Bytes>();
        let mut wtxn = test.env.write_txn().unwrap();
        let entries: Vec<(spinney::format::Key, Vec<u8>)> =
            raw.iter(&wtxn).unwrap().map(|e| e.map(|(k, v)| (k, v.to_vec())).unwrap()).collect();
        let mut damaged = Vec::new();
        for _ in 0..rng.random_range(1..4) {
            let (key, mut value) = entries[rng.random_range(0..entries.len())].clone();
            if value.is_empty() || rng.random_bool(0.3) {
                value.truncate(rng.random_range(0..value.len().max(1)));
            } else {
                let at = rng.random_range(0..value.len());
                value[at] ^= 1 << rng.random_range(0..8);
            }
            raw.put(&mut wtxn, &key, &value).unwrap();
            damaged.push(key);
        }
        let mut errors = common::read_errors(&wtxn, db, &set, 4);
        let writer = Writer::<Euclidean>::new(db, 0, 8);
        let build = (|| {
            writer.del_item(&mut wtxn, 3)?;
            writer.add_item(&mut wtxn, 5_000, set.queries.get(0))?;
            writer.builder(&mut common::rng(2)).build(&mut wtxn)
        })();
        errors.extend(build.err());
        noticed += usize::from(!errors.is_empty());
        for err in &errors {
            let expected = matches!(err, Error::Corrupted { key, .. } if damaged.contains(key) || key.mode == NodeMode::Tree)
                || matches!(
                    err,
                    Error::Corrupted { .. }
                        | Error::DistanceMismatch { .. }
                        | Error::IndexDimensionMismatch { .. }
                        | Error::FormatVersion { .. }
                        | Error::NotBuilt { .. }
                );
            assert!(expected, "round {round}, damaged {damaged:?}: {err}");
        }
    }
    println!("{noticed} of 60 damaged databases gave an error");
    assert!(noticed >= 30, "only {noticed} of 60 damaged databases were noticed");
}

#[test]
fn readers_answer_while_a_writer_builds() {
    let set = data::clustered(3_000, 20, 16, 6);
    let test = TestEnv::new(256 * MIB);
    let db = test.database::<Euclidean>();
    build_index(&test, db, 0, &set.base.clone_prefix(1_000), Some(4), 1);
    let stop = AtomicBool::new(false);
    let queries = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for reader_thread in 0..3 {
            let (test, set, stop, queries) = (&test, &set, &stop, &queries);
            scope.spawn(move || {
                let mut q = reader_thread;
                while !stop.load(Ordering::Relaxed) {
                    let rtxn = test.env.read_txn().unwrap();
                    let reader = Reader::<Euclidean>::open(&rtxn, 0, db).unwrap();
                    let found = reader.nns(10).by_vector(&rtxn, set.queries.get(q % 20)).unwrap();
                    assert!(found.windows(2).all(|w| w[0].1 <= w[1].1), "sorted");
                    assert!(found.iter().all(|(id, _)| reader.item_ids().contains(*id)), "only visible items");
                    if q % 50 == 0 {
                        reader.check(&rtxn).unwrap();
                    }
                    q += 3;
                    queries.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        // The writer: rounds of adds, deletes and builds, committed one by one.
        let writer = Writer::<Euclidean>::new(db, 0, 16);
        let start = std::time::Instant::now();
        let mut round = 0u32;
        while start.elapsed() < std::time::Duration::from_secs(3) && round < 40 {
            let mut wtxn = test.env.write_txn().unwrap();
            for i in 0..50 {
                let id = 1_000 + (round * 50 + i) % 2_000;
                writer.add_item(&mut wtxn, id, set.base.get(id as usize)).unwrap();
                writer.del_item(&mut wtxn, (round * 37 + i * 11) % 1_000).unwrap();
            }
            if round.is_multiple_of(2) {
                writer.builder(&mut common::rng(round.into())).build(&mut wtxn).unwrap();
            }
            wtxn.commit().unwrap();
            round += 1;
        }
        stop.store(true, Ordering::Relaxed);
        println!("{round} writer rounds, {} queries", queries.load(Ordering::Relaxed));
    });
    assert!(queries.load(Ordering::Relaxed) > 0);
}
