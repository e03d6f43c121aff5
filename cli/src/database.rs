//! Opening the LMDB environment and the database of the indexes, and
//! calling a generic function with the distance an index was built with.

use std::path::PathBuf;

use spinney::heed::types::Bytes;
use spinney::heed::{CommitOrAbort, Env, EnvOpenOptions, RoTxn};
use spinney::{Database, Distance, IndexInfo};

use crate::DatabaseArgs;
use crate::failure::{Failure, Outcome};

/// The database of indexes with its keys and values as bytes: each command
/// types it with the distance of the index it works on.
type RawDatabase = spinney::heed::Database<'static, Bytes, Bytes>;

/// An open environment and its database of indexes.
pub struct Opened {
    /// The environment.
    pub env: Env,
    db: RawDatabase,
    path: PathBuf,
    /// Whether the database is a named one.
    named: bool,
}

/// Opens the database of `args`: `None` when there is none yet. With
/// `create`, makes the directory, the environment and the database
/// instead.
pub fn open(args: &DatabaseArgs, create: bool) -> Outcome<Option<Opened>> {
    let path = args.path.as_path();
    if !path.join("data.mdb").is_file() {
        if !create {
            return Ok(None);
        }
        std::fs::create_dir_all(path).map_err(|e| Failure::file(path, e))?;
    }
    let mut options = EnvOpenOptions::new();
    options.map_size(args.map_size).max_dbs(16);
    // SAFETY: the environment is opened once in this process, and LMDB's
    // lock file keeps other processes' transactions consistent with ours.
    let env = unsafe { options.open(path) }.map_err(|e| Failure::file(path, e))?;
    let name = args.database.as_deref();
    let db = match create {
        true => Some(
            env.create_databases_and_commit(env.write_txn()?, |opener, wtxn| {
                opener.create_database(wtxn, name).map(CommitOrAbort::<_, ()>::Commit)
            })?
            .unwrap_commit(),
        ),
        false => env
            .open_databases_and_commit(env.read_txn()?, |opener, rtxn| {
                opener.open_database(rtxn, name).map(CommitOrAbort::<_, ()>::Commit)
            })?
            .unwrap_commit(),
    };
    Ok(db.map(|db| Opened { env, db, path: path.to_owned(), named: name.is_some() }))
}

/// Opens the database of `args`, or says how to make one.
pub fn existing(args: &DatabaseArgs) -> Outcome<Opened> {
    let path = args.path.display();
    open(args, false)?.ok_or_else(|| match args.database.as_deref() {
        Some(name) if args.path.join("data.mdb").is_file() => {
            Failure::new(format!("{path}: no database named {name:?}"))
        }
        _ => Failure::new(format!(
            "{path}: no database here (no data.mdb); create one with `spinney import {path} FILE`"
        )),
    })
}

impl Opened {
    /// The database, typed for indexes of the distance `D`.
    pub fn db<D: Distance>(&self) -> Database<'static, D> {
        self.db.remap_types()
    }

    /// Every index of the database, or a clear refusal when it holds
    /// something else than spinney's indexes.
    pub fn indexes(&self) -> Outcome<Vec<IndexInfo>> {
        let rtxn = self.env.read_txn()?;
        spinney::indexes(&rtxn, self.db::<spinney::distances::Euclidean>()).map_err(|error| match error {
            spinney::Error::Corrupted { reason, .. } => {
                // LMDB keeps the names of the named databases as keys of
                // the unnamed one.
                let hint = match self.named {
                    true => "",
                    false => "; if the environment holds named databases, pass --database NAME",
                };
                Failure::new(format!(
                    "{}: not a spinney database ({reason}); an arroy index can be migrated with Writer::import_arroy{hint}",
                    self.path.display()
                ))
            }
            other => Failure::from(other),
        })
    }

    /// The description of `index`, or a clear error when it does not exist
    /// or is not a spinney index.
    pub fn index_info(&self, index: u16) -> Outcome<IndexInfo> {
        let path = self.path.display();
        let Some(info) = self.indexes()?.into_iter().find(|info| info.index == index) else {
            return Err(Failure::new(format!(
                "{path}: there is no index {index}; `spinney ls {path}` lists the indexes"
            )));
        };
        if info.format_version.is_none() {
            return Err(Failure::new(format!(
                "index {index} has entries but no spinney header: it is not a spinney index"
            )));
        }
        Ok(info)
    }

    /// The size of the database file, and of the pages its indexes use
    /// (the file also holds free pages, which later writes reuse).
    pub fn disk_usage(&self, rtxn: &RoTxn) -> Outcome<(u64, u64)> {
        let file = std::fs::metadata(self.path.join("data.mdb")).map_err(|e| Failure::file(&self.path, e))?.len();
        let stat = self.db.stat(rtxn)?;
        let used = (stat.branch_pages + stat.leaf_pages + stat.overflow_pages) as u64 * u64::from(stat.page_size);
        Ok((file, used))
    }
}

/// The refusal of an index whose header is not in the current format.
pub fn other_format(info: &IndexInfo) -> Failure {
    let found = info.format_version.map_or_else(|| "no".to_string(), |version| version.to_string());
    Failure::new(format!(
        "index {} is in format version {found}, this release reads version {}; convert it in place with Writer::upgrade",
        info.index,
        spinney::FORMAT_VERSION
    ))
}

/// Calls `$run::<D>($args...)` with `D` the distance named `$name`.
macro_rules! with_distance {
    ($name:expr, $run:ident($($arg:expr),* $(,)?)) => {{
        use spinney::distances::*;
        match $name {
            name if name == Euclidean::NAME => $run::<Euclidean>($($arg),*),
            name if name == Cosine::NAME => $run::<Cosine>($($arg),*),
            name if name == DotProduct::NAME => $run::<DotProduct>($($arg),*),
            name if name == Manhattan::NAME => $run::<Manhattan>($($arg),*),
            name if name == BinaryQuantizedEuclidean::NAME => $run::<BinaryQuantizedEuclidean>($($arg),*),
            name if name == BinaryQuantizedCosine::NAME => $run::<BinaryQuantizedCosine>($($arg),*),
            name if name == BinaryQuantizedManhattan::NAME => $run::<BinaryQuantizedManhattan>($($arg),*),
            name if name == Hamming::NAME => $run::<Hamming>($($arg),*),
            other => Err($crate::failure::Failure::new(format!(
                "unknown distance `{other}`: use euclidean, cosine, dot-product, manhattan, \
                 binary-quantized-euclidean, binary-quantized-cosine, binary-quantized-manhattan or hamming"
            ))),
        }
    }};
}
pub(crate) use with_distance;

/// Calls `$run::<D>(...)` with the distance index `$info` was written with.
macro_rules! with_index_distance {
    ($info:expr, $run:ident($($arg:expr),* $(,)?)) => {{
        let info: &spinney::IndexInfo = $info;
        match info.distance.as_deref() {
            Some(name) => $crate::database::with_distance!(name, $run($($arg),*)),
            None => Err($crate::database::other_format(info)),
        }
    }};
}
pub(crate) use with_index_distance;
