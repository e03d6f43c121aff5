//! A database in a temporary directory, for the examples: how to open one
//! is in the crate's quickstart.

use spinney::heed::{CommitOrAbort, Env, EnvOpenOptions};
use spinney::{Database, Distance};
use tempfile::TempDir;

/// A fresh environment of `map_size` bytes and its unnamed database; the
/// directory goes away with the `TempDir`.
pub fn database<D: Distance>(
    map_size: usize,
) -> Result<(TempDir, Env, Database<'static, D>), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    // SAFETY: the environment is opened once, in a fresh directory of this process.
    let env = unsafe { EnvOpenOptions::new().map_size(map_size).open(dir.path())? };
    let db = env
        .create_databases_and_commit(env.write_txn()?, |opener, wtxn| {
            opener.create_database(wtxn, None).map(CommitOrAbort::<_, ()>::Commit)
        })?
        .unwrap_commit();
    Ok((dir, env, db))
}
