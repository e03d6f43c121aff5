//! Incremental builds against full rebuilds: the time of a build that adds
//! 1% new items to a built index, of one that deletes 1%, each next to a
//! fresh build of the whole; and recall@10 after ten rounds of 10% churn
//! (delete 10%, add as many new) next to a fresh build of the final items.
//!
//! ```text
//! cargo bench --bench incremental                                   # generated 100k x 128
//! cargo bench --bench incremental -- --data ../shared/data/siftsmall
//! ```
//!
//! Takes the options of the quickstart (`--data`, `--metric euclidean|cosine`,
//! `--n`, `--dimensions`, `--trees`, `--seed`).

#[path = "../examples/support/mod.rs"]
mod support;

use std::error::Error;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use spinney::distances::{Cosine, Euclidean};
use spinney::heed::{Env, WithTls};
use spinney::{Database, Distance, Reader, Writer};
use support::data::{self, Dataset};

struct Index<D: Distance> {
    env: Env<WithTls>,
    db: Database<'static, D>,
    _dir: tempfile::TempDir,
}

impl<D: Distance> Index<D> {
    fn new(map_size: usize) -> Result<Index<D>, Box<dyn Error>> {
        let (dir, env, db) = support::temporary::database(map_size)?;
        Ok(Index { env, db, _dir: dir })
    }

    /// Applies `change` then builds, in one transaction; returns the build time.
    fn change(
        &self,
        dimensions: usize,
        trees: Option<usize>,
        seed: u64,
        change: impl FnOnce(&Writer<D>, &mut spinney::heed::RwTxn) -> spinney::Result<()>,
    ) -> Result<Duration, Box<dyn Error>> {
        let writer = Writer::<D>::new(self.db, 0, dimensions);
        let mut wtxn = self.env.write_txn()?;
        change(&writer, &mut wtxn)?;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut builder = writer.builder(&mut rng);
        if let Some(trees) = trees {
            builder.n_trees(trees);
        }
        let start = Instant::now();
        builder.build(&mut wtxn)?;
        let elapsed = start.elapsed();
        wtxn.commit()?;
        Ok(elapsed)
    }

    fn recall(&self, dataset: &Dataset, truth: &[Vec<u32>], search_k: usize) -> Result<f64, Box<dyn Error>> {
        let rtxn = self.env.read_txn()?;
        let reader = Reader::<D>::open(&rtxn, 0, self.db)?;
        let search_k = NonZeroUsize::new(search_k).ok_or("search_k is zero")?;
        let mut found = Vec::new();
        for q in 0..dataset.queries.len() {
            let answer = reader.nns(10).search_k(search_k).by_vector(&rtxn, dataset.queries.get(q))?;
            found.push(answer.into_iter().map(|(id, _)| id).collect());
        }
        Ok(data::recall_at(10, truth, &found))
    }
}

fn add(
    writer: &Writer<impl Distance>,
    wtxn: &mut spinney::heed::RwTxn,
    set: &Dataset,
    ids: &[u32],
) -> spinney::Result<()> {
    ids.iter().try_for_each(|&i| writer.add_item(wtxn, i, set.base.get(i as usize)))
}

fn run<D: Distance>(options: &support::Options) -> Result<(), Box<dyn Error>> {
    let mut options = options.clone();
    // Room for the 1% and the ten rounds of churn beyond the indexed items.
    let dataset = match &options.data {
        Some(dir) => data::read_texmex(dir, D::NAME)?,
        None => {
            options.n *= 2;
            data::clustered(options.n, options.queries, options.dimensions, options.seed)
        }
    };
    let total = dataset.base.len();
    let (n, dimensions) = (total / 2, dataset.base.dimensions);
    let map_size = (total * dimensions * 4 * 8).max(1 << 30);
    let one_percent = n / 100;
    let first: Vec<u32> = (0..n as u32).collect();
    println!("{} {}: {n} items x {dimensions} dimensions indexed, {total} available", dataset.name, D::NAME);

    let index = Index::<D>::new(map_size)?;
    let fresh = index.change(dimensions, options.trees, 1, |w, wtxn| add(w, wtxn, &dataset, &first))?;
    let extra: Vec<u32> = (n as u32..(n + one_percent) as u32).collect();
    let added = index.change(dimensions, options.trees, 2, |w, wtxn| add(w, wtxn, &dataset, &extra))?;
    let removed: Vec<u32> = (0..n as u32).step_by(100).collect();
    let deleted = index.change(dimensions, options.trees, 3, |w, wtxn| {
        removed.iter().try_for_each(|&i| w.del_item(wtxn, i).map(drop))
    })?;
    println!("\n| build | seconds | vs fresh |\n| --- | ---: | ---: |");
    println!("| fresh, {n} items | {:.3} | 1x |", fresh.as_secs_f64());
    let speedup = |d: Duration| fresh.as_secs_f64() / d.as_secs_f64();
    println!("| add {one_percent} (1%) | {:.3} | {:.0}x faster |", added.as_secs_f64(), speedup(added));
    println!("| delete {} (1%) | {:.3} | {:.0}x faster |", removed.len(), deleted.as_secs_f64(), speedup(deleted));

    // Ten rounds of 10% churn on a new index: delete a tenth of the live
    // items, add as many unseen ones.
    let churned = Index::<D>::new(map_size)?;
    churned.change(dimensions, options.trees, 4, |w, wtxn| add(w, wtxn, &dataset, &first))?;
    let mut live = first.clone();
    let mut next = n as u32;
    let mut churn_time = Duration::ZERO;
    for round in 0..10u64 {
        let gone: Vec<u32> = live.iter().copied().skip(round as usize).step_by(10).collect();
        live.retain(|i| gone.binary_search(i).is_err());
        let fresh_ids: Vec<u32> = (next..next + gone.len() as u32).filter(|&i| (i as usize) < total).collect();
        next += gone.len() as u32;
        live.extend(&fresh_ids);
        churn_time += churned.change(dimensions, options.trees, 5 + round, |w, wtxn| {
            gone.iter().try_for_each(|&i| w.del_item(wtxn, i).map(drop))?;
            add(w, wtxn, &dataset, &fresh_ids)
        })?;
        live.sort_unstable();
    }
    let rebuilt = Index::<D>::new(map_size)?;
    let rebuild_time = rebuilt.change(dimensions, options.trees, 99, |w, wtxn| add(w, wtxn, &dataset, &live))?;

    let final_set = Dataset {
        name: "final".into(),
        base: data::Vectors {
            dimensions,
            values: live.iter().flat_map(|&i| dataset.base.get(i as usize).to_vec()).collect(),
        },
        queries: data::Vectors { dimensions, values: dataset.queries.values.clone() },
        ground_truth: None,
    };
    let truth: Vec<Vec<u32>> = data::brute_force(&final_set, D::NAME, 10)
        .into_iter()
        .map(|row| row.into_iter().map(|i| live[i as usize]).collect())
        .collect();
    // Efforts below the scan: shares of the items for an index with codes
    // (search_k counts codes), multiples of the trees without.
    let efforts: Vec<usize> = {
        let rtxn = rebuilt.env.read_txn()?;
        let reader = Reader::<D>::open(&rtxn, 0, rebuilt.db)?;
        match dataset.base.dimensions >= spinney::MIN_CODE_DIMENSIONS && !D::QUANTIZED {
            true => [200, 100, 50, 20].map(|part| live.len() / part).to_vec(),
            false => [1, 2, 4, 8].map(|factor| 10 * reader.n_trees() * factor).to_vec(),
        }
    };
    println!(
        "\nAfter 10 rounds of 10% churn ({:.2} s of builds in all; a fresh build of the final {} items: {:.2} s):",
        churn_time.as_secs_f64(),
        live.len(),
        rebuild_time.as_secs_f64()
    );
    println!("\n| search_k | recall@10 churned | recall@10 fresh | difference |\n| ---: | ---: | ---: | ---: |");
    for search_k in efforts {
        let (a, b) = (churned.recall(&dataset, &truth, search_k)?, rebuilt.recall(&dataset, &truth, search_k)?);
        println!("| {search_k} | {a:.3} | {b:.3} | {:+.3} |", a - b);
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let options = support::Options::parse(args)?;
    match options.metric.as_str() {
        "euclidean" => run::<Euclidean>(&options),
        "cosine" => run::<Cosine>(&options),
        other => Err(format!("this benchmark runs euclidean or cosine, not {other}").into()),
    }
}
