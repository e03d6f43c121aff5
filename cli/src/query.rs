//! `spinney query`: the nearest neighbours of an item, a vector, or each
//! vector of a file.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::{ArgGroup, Args};
use roaring::RoaringBitmap;
use serde_json::json;
use spinney::{Distance, QueryBuilder, Reader};

use crate::IndexArgs;
use crate::database::{self, Opened, with_index_distance};
use crate::failure::{Failure, Outcome};
use crate::vectors::{self, json_vector};

/// The options of `spinney query`.
#[derive(Args)]
#[command(group(ArgGroup::new("what").required(true).args(["id", "vector", "file"])))]
pub struct QueryArgs {
    #[command(flatten)]
    pub target: IndexArgs,
    /// The neighbours of this item (itself included).
    #[arg(long)]
    pub id: Option<u32>,
    /// The neighbours of this vector, as a JSON array: '[0.1, 0.2, ...]'.
    #[arg(long)]
    pub vector: Option<String>,
    /// The neighbours of each vector of this file (.fvecs, .npy, .jsonl, .csv).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// How many neighbours.
    #[arg(short = 'k', long, default_value = "10", value_parser = crate::parse_count("neighbours to return"))]
    pub count: NonZeroUsize,
    /// How many candidates to gather from the trees (see QueryBuilder::search_k).
    #[arg(long, value_parser = crate::parse_count("candidates to score"))]
    pub search_k: Option<NonZeroUsize>,
    /// How many candidates to rank by their exact distance (see QueryBuilder::rerank).
    #[arg(long, value_parser = crate::parse_count("candidates to rank exactly"))]
    pub rerank: Option<NonZeroUsize>,
    /// Only answer with the ids listed in this file (separated by spaces, commas or lines).
    #[arg(long, value_name = "IDS")]
    pub filter: Option<PathBuf>,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `spinney query`.
pub fn run(args: &QueryArgs) -> Outcome {
    let opened = database::existing(&args.target.db)?;
    with_index_distance!(&opened.index_info(args.target.index)?, query(args, &opened))
}

/// One question: a label and the vector or item it asks about.
enum Question {
    Vector(String, Vec<f32>),
    Item(u32),
}

fn query<D: Distance>(args: &QueryArgs, opened: &Opened) -> Outcome {
    let rtxn = opened.env.read_txn()?;
    let reader = Reader::open(&rtxn, args.target.index, opened.db::<D>())?;
    let filter = args.filter.as_deref().map(vectors::read_ids).transpose()?;
    let questions = questions(args)?;

    let mut builder = reader.nns(args.count.get());
    configure(&mut builder, args.search_k, args.rerank, filter.as_ref());
    let mut answers = Vec::with_capacity(questions.len());
    for question in &questions {
        let (label, found) = match question {
            Question::Vector(label, vector) => (label.clone(), builder.by_vector(&rtxn, vector)?),
            Question::Item(id) => {
                let found = builder.by_item(&rtxn, *id)?.ok_or_else(|| {
                    Failure::new(format!("item {id} is not in index {} (or not built yet)", args.target.index))
                })?;
                (format!("item {id}"), found)
            }
        };
        answers.push((label, found));
    }
    if args.json {
        let document: Vec<_> = answers
            .iter()
            .map(|(label, found)| {
                let neighbours: Vec<_> =
                    found.iter().map(|(id, distance)| json!({"id": id, "distance": distance})).collect();
                json!({"query": label, "neighbours": neighbours})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&document).expect("JSON values serialize"));
    } else {
        for (label, found) in &answers {
            println!("{label}");
            println!("  {:>4} {:>10} {:>12}", "rank", "id", "distance");
            for (rank, (id, distance)) in found.iter().enumerate() {
                println!("  {:>4} {id:>10} {distance:>12.6}", rank + 1);
            }
        }
    }
    Ok(())
}

/// Sets the options every command shares on a query.
pub fn configure<'r, D: Distance>(
    builder: &mut QueryBuilder<'r, '_, D>,
    search_k: Option<NonZeroUsize>,
    rerank: Option<NonZeroUsize>,
    filter: Option<&'r RoaringBitmap>,
) {
    if let Some(search_k) = search_k {
        builder.search_k(search_k);
    }
    if let Some(rerank) = rerank {
        builder.rerank(rerank);
    }
    if let Some(filter) = filter {
        builder.candidates(filter);
    }
}

fn questions(args: &QueryArgs) -> Outcome<Vec<Question>> {
    if let Some(id) = args.id {
        return Ok(vec![Question::Item(id)]);
    }
    if let Some(text) = &args.vector {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| Failure::new(format!("--vector is not JSON: {e}")))?;
        let vector = json_vector(&value).map_err(|why| Failure::new(format!("--vector: {why}")))?;
        return Ok(vec![Question::Vector("vector".into(), vector)]);
    }
    let path = args.file.clone().expect("clap requires --id, --vector or --file");
    let queries = vectors::read_queries(path)?;
    Ok(queries.into_iter().enumerate().map(|(row, vector)| Question::Vector(format!("query {row}"), vector)).collect())
}
