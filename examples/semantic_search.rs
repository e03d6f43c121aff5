//! Semantic search over the summaries of 40,000 Python packages: each
//! summary's sentence embedding (all-MiniLM-L6-v2, 384 dimensions) goes
//! into a cosine index; a question is asked with the embedding of a text,
//! and the nearest summaries are printed.
//!
//! ```text
//! cargo run --release --example semantic_search -- ../shared/data/pypi-minilm
//! ```
//!
//! The folder holds `base.fvecs` and `base_texts.jsonl` (the items),
//! `query.fvecs` and `query_texts.jsonl` (the questions, embedded with the
//! same model).

#[path = "support/data.rs"]
mod data;
#[path = "support/temporary.rs"]
mod temporary;

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use spinney::distances::Cosine;
use spinney::{Reader, Writer};

/// The `text` field of each line of a `.jsonl` file.
fn texts(path: &Path) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut texts = Vec::new();
    for line in std::fs::read_to_string(path)?.lines() {
        let record: serde_json::Value = serde_json::from_str(line)?;
        texts.push(record["text"].as_str().ok_or("a line without text")?.to_owned());
    }
    Ok(texts)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let folder = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| "../shared/data/pypi-minilm".into());
    let base = data::read_fvecs(&folder.join("base.fvecs"))?;
    let base_texts = texts(&folder.join("base_texts.jsonl"))?;
    let queries = data::read_fvecs(&folder.join("query.fvecs"))?;
    let query_texts = texts(&folder.join("query_texts.jsonl"))?;

    let (_dir, env, db) = temporary::database::<Cosine>(1 << 30)?;
    let started = Instant::now();
    let mut wtxn = env.write_txn()?;
    let writer = Writer::<Cosine>::new(db, 0, base.dimensions);
    for id in 0..base.len() {
        writer.add_item(&mut wtxn, id as u32, base.get(id))?;
    }
    writer.builder(&mut StdRng::seed_from_u64(42)).build(&mut wtxn)?;
    wtxn.commit()?;
    println!("{} summaries indexed in {:.2} s\n", base.len(), started.elapsed().as_secs_f64());

    let rtxn = env.read_txn()?;
    let reader = Reader::<Cosine>::open(&rtxn, 0, db)?;
    for q in (0..queries.len().min(query_texts.len())).take(4) {
        println!("\"{}\"", query_texts[q]);
        let asked = Instant::now();
        let nearest = reader.nns(5).by_vector(&rtxn, queries.get(q))?;
        for (id, distance) in nearest {
            println!("  {distance:.3}  {}", base_texts[id as usize]);
        }
        println!("  ({:.2} ms)\n", asked.elapsed().as_secs_f64() * 1e3);
    }
    Ok(())
}
