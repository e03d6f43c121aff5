//! `spinney import`: adds the vectors of a file to an index, in one
//! transaction (a bad row leaves the database as it was).

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use spinney::{Distance, IndexInfo, Writer};

use crate::IndexArgs;
use crate::database::{self, Opened, with_distance};
use crate::failure::{Failure, Outcome};
use crate::vectors::{Format, Rows, Source};

/// The options of `spinney import`.
#[derive(Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub target: IndexArgs,
    /// The file of vectors: .fvecs, .npy, .jsonl or .csv.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The distance of a new index (an existing index keeps its own):
    /// euclidean, cosine, dot-product, manhattan, binary-quantized-euclidean,
    /// binary-quantized-cosine, binary-quantized-manhattan or hamming.
    #[arg(long)]
    pub metric: Option<String>,
    /// The file's format, when its extension does not say.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Where ids come from: `row` (the row number, from 0) or the name of a
    /// JSON field or CSV column [default: row for .fvecs and .npy, id otherwise].
    #[arg(long)]
    pub ids: Option<String>,
    /// The JSON field, or CSV column, holding each vector as an array; a CSV
    /// file without it has one column per dimension.
    #[arg(long, default_value = "vector")]
    pub vector_field: String,
}

/// Runs `spinney import`.
pub fn run(args: &ImportArgs) -> Outcome {
    let source = Source::new(args.file.clone(), args.format, args.ids.as_deref(), &args.vector_field)?;
    let mut rows = source.rows()?.peekable();
    let dimensions = match rows.peek() {
        Some(Ok((_, vector))) => vector.len(),
        Some(Err(_)) => return Err(rows.next().and_then(Result::err).expect("peeked an error")),
        None => return Err(Failure::file(&args.file, "no vectors in the file")),
    };
    let opened = database::open(&args.target.db, false)?;
    let existing = match &opened {
        Some(opened) => opened.indexes()?.into_iter().find(|info| info.index == args.target.index),
        None => None,
    };
    let metric = match (&args.metric, existing) {
        (Some(metric), _) => metric.clone(),
        (None, Some(IndexInfo { distance: Some(distance), .. })) => distance,
        (None, Some(info)) => return Err(database::other_format(&info)),
        (None, None) => {
            return Err(Failure::new(format!(
                "index {} is new: say its distance with --metric (e.g. --metric cosine)",
                args.target.index
            )));
        }
    };
    with_distance!(metric.as_str(), import(args, opened, Box::new(rows), dimensions))
}

/// Imports into `opened`, or into a database made now when there was none.
fn import<D: Distance>(args: &ImportArgs, opened: Option<Opened>, rows: Rows, dimensions: usize) -> Outcome {
    let opened = match opened {
        Some(opened) => opened,
        None => database::open(&args.target.db, true)?.expect("open makes the database it is asked to"),
    };
    let started = Instant::now();
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} importing {pos} vectors ({per_sec})").expect("a valid template"),
    );
    let mut wtxn = opened.env.write_txn()?;
    let writer = Writer::new(opened.db::<D>(), args.target.index, dimensions);
    let mut count = 0u64;
    for row in rows {
        let (id, vector) = row?;
        writer.add_item(&mut wtxn, id, &vector).map_err(|error| match error {
            spinney::Error::DimensionMismatch { .. } | spinney::Error::NonFiniteValue { .. } => {
                Failure::file(&args.file, format!("item {id}: {error}"))
            }
            other => Failure::from(other),
        })?;
        count += 1;
        if count.is_multiple_of(1024) {
            bar.set_position(count);
        }
    }
    wtxn.commit()?;
    bar.finish_and_clear();
    println!(
        "imported {count} vectors of {dimensions} dimensions into index {} ({}) in {:.2} s; run `spinney build` to search them",
        args.target.index,
        D::NAME,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
