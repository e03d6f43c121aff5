//! `spinney eval`: recall and speed of an index over a sweep of search
//! efforts, against a ground truth read or computed exactly, with a plot.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use spinney::{Distance, Reader};

use crate::IndexArgs;
use crate::database::{self, Opened, with_index_distance};
use crate::failure::{Failure, Outcome};
use crate::plot::{self, Line};
use crate::query::configure;
use crate::vectors;

/// The options of `spinney eval`.
#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub target: IndexArgs,
    /// The query vectors (.fvecs, .npy, .jsonl, .csv).
    #[arg(long)]
    pub queries: PathBuf,
    /// The true neighbours of each query (.ivecs, ids as imported); computed
    /// exactly when not given.
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Neighbours per query: recall@k.
    #[arg(short = 'k', long, default_value = "10", value_parser = crate::parse_count("neighbours to return"))]
    pub count: NonZeroUsize,
    /// The search_k values to sweep, comma separated [default: from k x 10
    /// up to every item, by factors of about 3].
    #[arg(long, value_delimiter = ',', value_parser = crate::parse_count("candidates to score"))]
    pub search_k: Vec<NonZeroUsize>,
    /// The re-ranking settings, one line of the plot each: `bound` (the
    /// default, by the codes' error bound) or a number of candidates.
    #[arg(long, value_delimiter = ',', default_value = "bound")]
    pub rerank: Vec<String>,
    /// Where to write the plot, without extension: PATH.svg and PATH.png.
    #[arg(long, default_value = "spinney-eval")]
    pub plot: PathBuf,
}

/// Runs `spinney eval`.
pub fn run(args: &EvalArgs) -> Outcome {
    let opened = database::existing(&args.target.db)?;
    with_index_distance!(&opened.index_info(args.target.index)?, eval(args, &opened))
}

fn eval<D: Distance>(args: &EvalArgs, opened: &Opened) -> Outcome {
    let rtxn = opened.env.read_txn()?;
    let reader = Reader::open(&rtxn, args.target.index, opened.db::<D>())?;
    let queries = vectors::read_queries(args.queries.clone())?;
    if queries.is_empty() {
        return Err(Failure::file(&args.queries, "no queries in the file"));
    }
    let k = args.count.get();
    let reranks = args
        .rerank
        .iter()
        .map(|text| match text.as_str() {
            "bound" => Ok(None),
            number => number.parse::<NonZeroUsize>().map(Some).map_err(|_| {
                Failure::new(format!("--rerank `{number}`: use `bound` or a positive number of candidates"))
            }),
        })
        .collect::<Outcome<Vec<_>>>()?;
    let every = NonZeroUsize::new(reader.n_items() as usize).unwrap_or(NonZeroUsize::MIN);

    let started = Instant::now();
    let truth: Vec<Vec<u32>> = match &args.truth {
        Some(path) => {
            let truth = vectors::read_ivecs(path)?;
            if truth.len() < queries.len() {
                return Err(Failure::file(path, format!("{} rows for {} queries", truth.len(), queries.len())));
            }
            truth.into_iter().map(|row| row.into_iter().take(k).collect()).collect()
        }
        None => {
            // Every item a candidate: scored exactly, in slot order, with
            // the library's kernels.
            let mut exact = reader.nns(k);
            exact.candidates(reader.item_ids()).exact_below(u64::MAX, 1.0);
            let truth = queries
                .iter()
                .map(|q| Ok(exact.by_vector(&rtxn, q)?.into_iter().map(|(id, _)| id).collect()))
                .collect::<Outcome<_>>()?;
            println!(
                "exact ground truth of {} queries computed in {:.2} s ({:.0} queries per second)",
                queries.len(),
                started.elapsed().as_secs_f64(),
                queries.len() as f64 / started.elapsed().as_secs_f64()
            );
            truth
        }
    };
    let sweep = match args.search_k.is_empty() {
        false => args.search_k.clone(),
        true => default_sweep(k, every),
    };

    println!(
        "{:>8} {:>9} {:>10} {:>10} {:>9} {:>9} {:>9}",
        "rerank", "search_k", "recall@k", "q/s", "p50 ms", "p95 ms", "p99 ms"
    );
    let mut lines = Vec::new();
    for rerank in &reranks {
        let label = rerank.map_or("bound".to_string(), |n| n.to_string());
        let mut points = Vec::new();
        for &search_k in &sweep {
            let mut builder = reader.nns(k);
            configure(&mut builder, Some(search_k), *rerank, None);
            let mut latencies = Vec::with_capacity(queries.len());
            let mut hits = 0usize;
            let mut expected = 0usize;
            let sweep_started = Instant::now();
            for (query, truth) in queries.iter().zip(&truth) {
                let asked = Instant::now();
                let found = builder.by_vector(&rtxn, query)?;
                latencies.push(asked.elapsed().as_secs_f64() * 1e3);
                hits += found.iter().filter(|(id, _)| truth.contains(id)).count();
                expected += truth.len().min(k);
            }
            let qps = queries.len() as f64 / sweep_started.elapsed().as_secs_f64();
            let recall = hits as f64 / expected.max(1) as f64;
            latencies.sort_by(f64::total_cmp);
            let pick = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
            println!(
                "{label:>8} {search_k:>9} {recall:>10.4} {qps:>10.0} {:>9.3} {:>9.3} {:>9.3}",
                pick(0.5),
                pick(0.95),
                pick(0.99)
            );
            points.push((recall, qps));
        }
        lines.push(Line { label: format!("rerank {label}"), points });
    }
    let title =
        format!("index {} ({}, {} items, {} trees)", args.target.index, D::NAME, reader.n_items(), reader.n_trees());
    let [svg, png] = plot::write(&args.plot, &title, &format!("recall@{k}"), &lines)?;
    println!("plot written to {} and {}", svg.display(), png.display());
    Ok(())
}

/// `k × 10`, `k × 30`, `k × 100`, ... up to every item.
fn default_sweep(k: usize, every: NonZeroUsize) -> Vec<NonZeroUsize> {
    let first = k.saturating_mul(10);
    let mut sweep: Vec<NonZeroUsize> = (0..usize::BITS)
        .flat_map(|decade| [1, 3].map(|step| first.saturating_mul(step).saturating_mul(10usize.saturating_pow(decade))))
        .take_while(|&search_k| search_k < every.get())
        .filter_map(NonZeroUsize::new)
        .collect();
    sweep.push(every);
    sweep
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use super::default_sweep;

    #[test]
    fn the_default_sweep_climbs_to_every_item() {
        let sweep: Vec<usize> =
            default_sweep(10, NonZeroUsize::new(40_000).unwrap()).into_iter().map(|n| n.get()).collect();
        assert_eq!(sweep, [100, 300, 1000, 3000, 10000, 30000, 40000]);
        let tiny: Vec<usize> = default_sweep(10, NonZeroUsize::new(50).unwrap()).into_iter().map(|n| n.get()).collect();
        assert_eq!(tiny, [50]);
        let huge: Vec<usize> =
            default_sweep(usize::MAX, NonZeroUsize::new(50).unwrap()).into_iter().map(|n| n.get()).collect();
        assert_eq!(huge, [50]);
    }
}
