//! Opening the LMDB environment and the database of the indexes, and
//! calling a generic function with the distance an index was built with.

use std::path::Path;

use spinney::heed::{CommitOrAbort, Env, EnvOpenOptions, RoTxn};
use spinney::{Database, Distance, IndexInfo};

use crate::DatabaseArgs;
use crate::failure::{Failure, Outcome};

/// An open environment and its database of indexes, typed by `D`.
pub struct Opened<D: Distance> {
    /// The environment.
    pub env: Env,
    /// The database holding the indexes.
    pub db: Database<'static, D>,
}

/// Opens the environment at `args.path`. With `create`, makes the
/// directory and the database when they do not exist; without, says how to
/// make one.
pub fn open<D: Distance>(args: &DatabaseArgs, create: bool) -> Outcome<Opened<D>> {
    let path = args.path.as_path();
    if !path.join("data.mdb").is_file() {
        if !create {
            return Err(Failure::new(format!(
                "{}: no database here (no data.mdb); create one with `spinney import {} FILE`",
                path.display(),
                path.display()
            )));
        }
        std::fs::create_dir_all(path).map_err(|e| Failure::file(path, e))?;
    }
    let mut options = EnvOpenOptions::new();
    options.map_size(args.map_size).max_dbs(16);
    // SAFETY: the environment is opened once in this process, and LMDB's
    // lock file keeps other processes' transactions consistent with ours.
    let env = unsafe { options.open(path) }.map_err(|e| Failure::file(path, e))?;
    let name = args.database.as_deref();
    let db = if create {
        env.create_databases_and_commit(env.write_txn()?, |opener, wtxn| {
            opener.create_database(wtxn, name).map(CommitOrAbort::<_, ()>::Commit)
        })?
        .unwrap_commit()
    } else {
        env.open_databases_and_commit(env.read_txn()?, |opener, rtxn| {
            opener.open_database(rtxn, name).map(CommitOrAbort::<_, ()>::Commit)
        })?
        .unwrap_commit()
        .ok_or_else(|| Failure::new(format!("{}: no database named {:?}", path.display(), name.unwrap_or(""))))?
    };
    Ok(Opened { env, db })
}

impl<D: Distance> Opened<D> {
    /// The size of the database file, and of the pages its indexes use
    /// (the file also holds free pages, which later writes reuse).
    pub fn disk_usage(&self, rtxn: &RoTxn, path: &Path) -> Outcome<(u64, u64)> {
        let file = std::fs::metadata(path.join("data.mdb")).map_err(|e| Failure::file(path, e))?.len();
        let stat = self.db.stat(rtxn)?;
        let used = (stat.branch_pages + stat.leaf_pages + stat.overflow_pages) as u64 * u64::from(stat.page_size);
        Ok((file, used))
    }
}

/// Every index of the database, or a clear refusal when it holds something
/// else than spinney's indexes.
pub fn indexes(args: &DatabaseArgs) -> Outcome<Vec<IndexInfo>> {
    let opened = open::<spinney::distances::Euclidean>(args, false)?;
    let rtxn = opened.env.read_txn()?;
    spinney::indexes(&rtxn, opened.db).map_err(|error| not_spinney(&args.path, error))
}

/// The indexes of the database, none when it does not exist yet (no
/// environment, or no database of that name in it).
pub fn existing_indexes(args: &DatabaseArgs) -> Outcome<Vec<IndexInfo>> {
    if !args.path.join("data.mdb").is_file() {
        return Ok(Vec::new());
    }
    let opened = open::<spinney::distances::Euclidean>(&DatabaseArgs { database: None, ..args.clone() }, false)?;
    let named = opened.env.open_databases_and_commit(opened.env.read_txn()?, |opener, rtxn| {
        opener
            .open_database::<spinney::heed::types::Bytes, spinney::heed::types::Bytes>(rtxn, args.database.as_deref())
            .map(CommitOrAbort::<_, ()>::Commit)
    })?;
    drop(opened);
    match named.unwrap_commit() {
        Some(_) => indexes(args),
        None => Ok(Vec::new()),
    }
}

/// What [`indexes`] says of a database holding keys spinney does not write.
fn not_spinney(path: &Path, error: spinney::Error) -> Failure {
    match error {
        spinney::Error::Corrupted { reason, .. } => Failure::new(format!(
            "{}: not a spinney database ({reason}); an arroy index can be migrated with Writer::import_arroy",
            path.display()
        )),
        other => Failure::from(other),
    }
}

/// The description of `index`, or a clear error when it does not exist or
/// is not a spinney index of the current format.
pub fn index_info(args: &DatabaseArgs, index: u16) -> Outcome<IndexInfo> {
    let all = indexes(args)?;
    let Some(info) = all.into_iter().find(|info| info.index == index) else {
        return Err(Failure::new(format!(
            "{}: there is no index {index}; `spinney ls {}` lists the indexes",
            args.path.display(),
            args.path.display()
        )));
    };
    if info.format_version.is_none() {
        return Err(Failure::new(format!(
            "index {index} has entries but no spinney header: it is not a spinney index"
        )));
    }
    Ok(info)
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
            None => Err($crate::failure::Failure::new(format!(
                "index {} is in format version {:?}, this release reads version {}; upgrade it with Writer::upgrade",
                info.index,
                info.format_version,
                spinney::FORMAT_VERSION
            ))),
        }
    }};
}
pub(crate) use with_index_distance;
