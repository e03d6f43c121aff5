//! Builds an index and measures it: build time, size on disk, recall@10 and
//! single-threaded queries per second over a sweep of `search_k`.
//!
//! ```text
//! cargo run --release --example quickstart                       # 100k x 128 generated
//! cargo run --release --example quickstart -- --data ../shared/data/siftsmall
//! ```
//!
//! Options: `--data DIR` (TEXMEX: base.fvecs, query.fvecs, gt_*.ivecs),
//! `--metric euclidean|cosine|manhattan|dot-product`, `--n N`,
//! `--dimensions D`, `--trees T`, `--split-after S`, `--seed S`.

mod data;

use std::error::Error;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use spinney::distances::{Cosine, DotProduct, Euclidean, Manhattan};
use spinney::heed::{CommitOrAbort, EnvOpenOptions};
use spinney::{Database, Distance, Reader, Writer};

struct Options {
    data: Option<PathBuf>,
    metric: String,
    n: usize,
    dimensions: usize,
    trees: Option<usize>,
    split_after: Option<usize>,
    seed: u64,
}

fn parse() -> Result<Options, Box<dyn Error>> {
    let mut options = Options {
        data: None,
        metric: "euclidean".into(),
        n: 100_000,
        dimensions: 128,
        trees: None,
        split_after: None,
        seed: 42,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--data" => options.data = Some(value()?.into()),
            "--metric" => options.metric = value()?,
            "--n" => options.n = value()?.parse()?,
            "--dimensions" => options.dimensions = value()?.parse()?,
            "--trees" => options.trees = Some(value()?.parse()?),
            "--split-after" => options.split_after = Some(value()?.parse()?),
            "--seed" => options.seed = value()?.parse()?,
            other => return Err(format!("unknown option {other}; see the top of examples/quickstart.rs").into()),
        }
    }
    Ok(options)
}

fn main() -> Result<(), Box<dyn Error>> {
    let options = parse()?;
    match options.metric.as_str() {
        "euclidean" => run::<Euclidean>(&options),
        "cosine" => run::<Cosine>(&options),
        "manhattan" => run::<Manhattan>(&options),
        "dot-product" => run::<DotProduct>(&options),
        other => Err(format!("unknown metric {other}").into()),
    }
}

fn run<D: Distance>(options: &Options) -> Result<(), Box<dyn Error>> {
    let metric = D::NAME;
    let dataset = match &options.data {
        Some(dir) => data::read_texmex(dir, metric)?,
        None => data::clustered(options.n, 100, options.dimensions, options.seed),
    };
    let truth = match &dataset.ground_truth {
        Some(truth) => truth.clone(),
        None => {
            let start = Instant::now();
            let truth = data::brute_force(&dataset, metric, 10);
            println!("exact ground truth computed in {:.1?}", start.elapsed());
            truth
        }
    };
    let (n, dimensions) = (dataset.base.len(), dataset.base.dimensions);
    println!("{}: {n} vectors x {dimensions} dimensions, {} queries, {metric}", dataset.name, dataset.queries.len());

    let dir = tempfile::tempdir()?;
    let raw_bytes = n * dimensions * 4;
    // SAFETY: the environment is opened once, in a fresh directory of this process.
    let env = unsafe { EnvOpenOptions::new().map_size((raw_bytes * 4).max(1 << 30)).open(dir.path())? };
    let db: Database<'static, D> = env
        .create_databases_and_commit(env.write_txn()?, |opener, wtxn| {
            opener.create_database(wtxn, None).map(CommitOrAbort::<_, ()>::Commit)
        })?
        .unwrap_commit();

    let start = Instant::now();
    let mut wtxn = env.write_txn()?;
    let writer = Writer::<D>::new(db, 0, dimensions);
    for i in 0..n {
        writer.append_item(&mut wtxn, i as u32, dataset.base.get(i))?;
    }
    let inserted = start.elapsed();
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut builder = writer.builder(&mut rng);
    if let Some(trees) = options.trees {
        builder.n_trees(trees);
    }
    if let Some(split_after) = options.split_after {
        builder.split_after(split_after);
    }
    builder.build(&mut wtxn)?;
    wtxn.commit()?;
    let built = start.elapsed() - inserted;
    let disk = env.real_disk_size()?;

    let rtxn = env.read_txn()?;
    let reader = Reader::<D>::open(&rtxn, 0, db)?;
    println!(
        "inserted in {inserted:.2?}, built {} trees in {built:.2?}; {:.1} MiB on disk ({:.2}x the raw vectors)",
        reader.n_trees(),
        disk as f64 / (1 << 20) as f64,
        disk as f64 / raw_bytes as f64
    );

    println!("\n| search_k | recall@10 | queries/s | ms/query |\n| ---: | ---: | ---: | ---: |");
    let base_k = 10 * reader.n_trees();
    for factor in [1, 2, 4, 8, 16, 32] {
        let search_k = NonZeroUsize::new(base_k * factor).unwrap_or(NonZeroUsize::MIN);
        let mut found = Vec::new();
        let mut elapsed = Duration::ZERO;
        let mut rounds = 0;
        while elapsed < Duration::from_millis(500) || rounds == 0 {
            found.clear();
            let start = Instant::now();
            for q in 0..dataset.queries.len() {
                let answer = reader.nns(10).search_k(search_k).by_vector(&rtxn, dataset.queries.get(q))?;
                found.push(answer.into_iter().map(|(id, _)| id).collect::<Vec<_>>());
            }
            elapsed += start.elapsed();
            rounds += 1;
        }
        let queries = (rounds * dataset.queries.len()) as f64;
        let recall = data::recall_at(10, &truth, &found);
        let qps = queries / elapsed.as_secs_f64();
        println!("| {search_k} | {recall:.3} | {qps:.0} | {:.3} |", 1000.0 / qps);
    }
    Ok(())
}
