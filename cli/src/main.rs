//! The `spinney` command: import vectors into a spinney index, build it,
//! query, inspect, check and evaluate it, from a shell.
//!
//! Every command takes the LMDB environment's directory (`DB`) first and
//! prints one line saying what went wrong, and what to do, on failure. The
//! exit codes are listed in `spinney --help`.

mod build;
mod database;
mod eval;
mod failure;
mod import;
mod inspect;
mod plot;
mod query;
mod vectors;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Approximate nearest neighbours inside an LMDB database.
///
/// Exit codes: 0 success; 1 an error (one line on stderr says what to do);
/// 2 a command line clap cannot read; 3 `check` found a problem; 130 a
/// build cancelled with Ctrl-C (the committed index is as it was).
#[derive(Parser)]
#[command(name = "spinney", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Add the vectors of a file (.fvecs, .npy, .jsonl, .csv) to an index.
    Import(import::ImportArgs),
    /// Build (or update) an index's trees over its items.
    Build(build::BuildArgs),
    /// The nearest neighbours of an item, a vector or each vector of a file.
    Query(query::QueryArgs),
    /// The shape of an index: items, trees, depth, buckets, bytes.
    Stats(IndexArgs),
    /// Verify every tree, slot and code of an index (exit code 3 on a problem).
    Check(IndexArgs),
    /// The indexes of a database: distance, dimensions, items, trees, pending changes.
    Ls(DatabaseArgs),
    /// Recall and speed over a sweep of search efforts, with a plot.
    Eval(eval::EvalArgs),
}

/// Where the database is.
#[derive(Args, Clone)]
pub struct DatabaseArgs {
    /// The LMDB environment's directory (it holds data.mdb).
    #[arg(value_name = "DB")]
    pub path: PathBuf,
    /// The named LMDB database holding the indexes (the unnamed one by default).
    #[arg(long, value_name = "NAME")]
    pub database: Option<String>,
    /// The largest size the database may grow to, e.g. 64GiB (rounded up to 64 KiB).
    #[arg(long, default_value = "64GiB", value_parser = parse_bytes)]
    pub map_size: usize,
}

/// Which index of which database.
#[derive(Args, Clone)]
pub struct IndexArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The index (0 to 65535).
    #[arg(long, default_value_t = 0)]
    pub index: u16,
}

/// How results are printed.
#[derive(ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Aligned columns.
    Table,
    /// One JSON document.
    Json,
}

/// Reads `64GiB`, `512MiB`, `2GB`, `1000000`.
fn parse_bytes(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("`{text}` is not a size like 2GiB or 512MiB"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("unknown unit `{unit}` in `{text}`: use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB")),
    };
    // LMDB takes map sizes in whole pages: round up to 64 KiB.
    Ok(((number * scale) as usize).div_ceil(1 << 16) << 16)
}

/// Reads a tree count: 1 to [`spinney::MAX_TREES`].
fn parse_trees(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("a forest needs one tree at least".into()),
        Ok(trees) if trees > spinney::MAX_TREES => Err(format!("an index holds at most {} trees", spinney::MAX_TREES)),
        Ok(trees) => Ok(trees),
        Err(_) => Err(format!("`{text}` is not a number of trees")),
    }
}

/// Reads a count of at least one of what `what` names, for `-k`,
/// `--search-k` and `--rerank`.
fn parse_count(what: &'static str) -> impl Fn(&str) -> Result<std::num::NonZeroUsize, String> + Clone {
    move |text| match text.trim().parse::<usize>() {
        Ok(count) => std::num::NonZeroUsize::new(count).ok_or_else(|| format!("{what}: give 1 or more")),
        Err(_) => Err(format!("`{text}` is not a number of {what}")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Import(args) => import::run(&args),
        Command::Build(args) => build::run(&args),
        Command::Query(args) => query::run(&args),
        Command::Stats(args) => inspect::stats(&args),
        Command::Check(args) => inspect::check(&args),
        Command::Ls(args) => inspect::ls(&args),
        Command::Eval(args) => eval::run(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes_read_with_their_units() {
        assert_eq!(parse_bytes("1000"), Ok(1 << 16));
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert_eq!(parse_bytes("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("1.5kb"), Ok(1 << 16));
        assert_eq!(parse_bytes("2GB"), Ok(2_000_027_648));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("3 parsecs").is_err());
    }
}
