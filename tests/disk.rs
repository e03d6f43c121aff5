//! The file a first build leaves, whichever way the items came: each vector
//! is written once, where queries read it, so the file holds little more
//! than the vectors, their codes in each tree's run and the trees.

mod common;

use common::{MIB, TestEnv, data};
use rand::seq::SliceRandom;
use spinney::Writer;
use spinney::distances::Cosine;

const N: usize = 6_000;
const DIMENSIONS: usize = 384;

/// How the items are loaded before the first build.
#[derive(Debug, Clone, Copy)]
enum Load {
    /// `add_item` in id order, in the build's transaction.
    InOrder,
    /// `add_item` in a random order.
    Shuffled,
    /// `append_item`.
    Appended,
    /// `add_item` in id order, a transaction per tenth of the items, and
    /// the build in one of its own.
    InTransactions,
}

/// The size of the file after loading `set` the way `load` says and
/// building with the default options.
fn file_after_first_build(set: &data::Dataset, load: Load) -> u64 {
    let test = TestEnv::new(256 * MIB);
    let db = test.database::<Cosine>();
    let writer = Writer::<Cosine>::new(db, 0, DIMENSIONS);
    let mut ids: Vec<u32> = (0..N as u32).collect();
    if let Load::Shuffled = load {
        ids.shuffle(&mut common::rng(7));
    }
    let mut wtxn = test.env.write_txn().unwrap();
    for (at, &id) in ids.iter().enumerate() {
        match load {
            Load::Appended => writer.append_item(&mut wtxn, id, set.base.get(id as usize)).unwrap(),
            _ => writer.add_item(&mut wtxn, id, set.base.get(id as usize)).unwrap(),
        }
        if let Load::InTransactions = load {
            if (at + 1) % (N / 10) == 0 {
                wtxn.commit().unwrap();
                wtxn = test.env.write_txn().unwrap();
            }
        }
    }
    writer.builder(&mut common::rng(1)).build(&mut wtxn).unwrap();
    wtxn.commit().unwrap();
    std::fs::metadata(test.dir.path().join("data.mdb")).unwrap().len()
}

#[test]
fn the_file_after_a_first_build_is_at_most_1_3_times_the_vectors() {
    let set = data::embeddings(N, 1, DIMENSIONS, 3);
    let raw = (N * DIMENSIONS * 4) as f64;
    for load in [Load::InOrder, Load::Shuffled, Load::Appended, Load::InTransactions] {
        let file = file_after_first_build(&set, load) as f64;
        println!("{load:?}: {:.3}x the raw vectors", file / raw);
        assert!(file <= 1.3 * raw, "{load:?}: a file of {file} bytes for {raw} bytes of vectors");
    }
}
