//! Shared set-up for the integration tests: a fresh environment, generated
//! data and brute-force answers.

#![allow(dead_code)]

#[path = "../../examples/support/data.rs"]
pub mod data;
pub mod model;

use rand::SeedableRng;
use rand::rngs::StdRng;
use spinney::heed::{CommitOrAbort, Env, EnvOpenOptions, WithTls};
use spinney::{Database, Distance, Writer};
use tempfile::TempDir;

/// The seed of a test: `SPINNEY_SEED` when set, else `default`. Printed so a
/// failure can be replayed.
pub fn seed(default: u64) -> u64 {
    let seed = std::env::var("SPINNEY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    println!("seed {seed} (set SPINNEY_SEED to replay)");
    seed
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// An environment in a temporary directory; dropped with it.
pub struct TestEnv {
    pub env: Env<WithTls>,
    pub dir: TempDir,
}

impl TestEnv {
    pub fn new(map_size: usize) -> TestEnv {
        let dir = tempfile::tempdir().unwrap();
        let env = open(&dir, map_size);
        TestEnv { env, dir }
    }

    pub fn database<D: Distance>(&self) -> Database<'static, D> {
        let wtxn = self.env.write_txn().unwrap();
        self.env
            .create_databases_and_commit(wtxn, |opener, wtxn| {
                opener.create_database(wtxn, None).map(CommitOrAbort::<_, ()>::Commit)
            })
            .unwrap()
            .unwrap_commit()
    }

    /// Closes the environment and opens it again from the same directory.
    pub fn reopen(self, map_size: usize) -> TestEnv {
        let TestEnv { env, dir } = self;
        env.prepare_for_closing().wait();
        TestEnv::from_dir(dir, map_size)
    }

    /// Opens the environment in `dir`.
    pub fn from_dir(dir: TempDir, map_size: usize) -> TestEnv {
        let env = open(&dir, map_size);
        TestEnv { env, dir }
    }

    /// Wraps an environment opened elsewhere (its directory is not removed).
    pub fn from_env(env: Env<WithTls>) -> TestEnv {
        TestEnv { env, dir: tempfile::tempdir().unwrap() }
    }

    /// Every key and value of the environment's unnamed database.
    pub fn dump(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let rtxn = self.env.read_txn().unwrap();
        let db: spinney::heed::Database<spinney::heed::types::Bytes, spinney::heed::types::Bytes> = self
            .env
            .open_databases_and_commit(rtxn, |opener, rtxn| {
                opener.open_database(rtxn, None).map(CommitOrAbort::<_, ()>::Commit)
            })
            .unwrap()
            .unwrap_commit()
            .unwrap();
        let rtxn = self.env.read_txn().unwrap();
        db.iter(&rtxn).unwrap().map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec()))).collect::<Result<_, _>>().unwrap()
    }
}

fn open(dir: &TempDir, map_size: usize) -> Env<WithTls> {
    // SAFETY: each test opens its own directory, once at a time.
    unsafe { EnvOpenOptions::new().map_size(map_size).open(dir.path()).unwrap() }
}

pub const MIB: usize = 1 << 20;

/// Adds every vector of `vectors` with ids `0..`.
pub fn add_items<D: Distance>(writer: &Writer<D>, wtxn: &mut spinney::heed::RwTxn, vectors: &data::Vectors) {
    for i in 0..vectors.len() {
        writer.add_item(wtxn, i as u32, vectors.get(i)).unwrap();
    }
}

/// Adds every vector of `vectors` with ids `0..`, in one transaction, and builds.
pub fn build_index<D: Distance>(
    test: &TestEnv,
    db: Database<'static, D>,
    index: u16,
    vectors: &data::Vectors,
    n_trees: Option<usize>,
    seed: u64,
) {
    let mut wtxn = test.env.write_txn().unwrap();
    let writer = Writer::<D>::new(db, index, vectors.dimensions);
    add_items(&writer, &mut wtxn, vectors);
    let mut rng = rng(seed);
    let mut builder = writer.builder(&mut rng);
    if let Some(n_trees) = n_trees {
        builder.n_trees(n_trees);
    }
    builder.build(&mut wtxn).unwrap();
    wtxn.commit().unwrap();
}

/// Everything a reader of index 0 can be asked, collecting the errors:
/// opening, `check`, `stats`, and unbounded searches for the first `queries`
/// vectors of `set`.
pub fn read_errors<D: Distance>(
    rtxn: &spinney::heed::RoTxn,
    db: Database<'static, D>,
    set: &data::Dataset,
    queries: usize,
) -> Vec<spinney::Error> {
    let mut errors = Vec::new();
    match spinney::Reader::<D>::open(rtxn, 0, db) {
        Err(err) => errors.push(err),
        Ok(reader) => {
            errors.extend(reader.check(rtxn).err());
            errors.extend(reader.stats(rtxn).err());
            let all = std::num::NonZeroUsize::new(1000).unwrap();
            for q in 0..queries {
                errors.extend(reader.nns(10).search_k(all).by_vector(rtxn, set.queries.get(q)).err());
            }
            errors.extend(reader.nns(10).by_item(rtxn, 7).err());
        }
    }
    errors
}
