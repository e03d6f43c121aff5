//! What the quickstart and the benchmark share: options, data, and one
//! measured run (build, size, then a recall / speed sweep over `search_k`).

#![allow(dead_code)]

pub mod data;
pub mod temporary;

use std::error::Error;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use spinney::distances::{
    BinaryQuantizedCosine, BinaryQuantizedEuclidean, BinaryQuantizedManhattan, Cosine, DotProduct, Euclidean, Hamming,
    Manhattan,
};
use spinney::{Distance, Reader, Searcher, Writer};

/// What to measure.
#[derive(Debug, Clone)]
pub struct Options {
    /// A TEXMEX folder or an `.npy` file; generated data when `None`.
    pub data: Option<PathBuf>,
    /// How to generate data when there is none: `clustered`, `embeddings` or `low-rank`.
    pub generator: String,
    pub metric: String,
    pub n: usize,
    pub dimensions: usize,
    pub queries: usize,
    pub trees: Option<usize>,
    pub split_after: Option<usize>,
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            data: None,
            generator: "clustered".into(),
            metric: "euclidean".into(),
            n: 100_000,
            dimensions: 128,
            queries: 200,
            trees: None,
            split_after: None,
            seed: 42,
        }
    }
}

pub const USAGE: &str = "options: --data DIR|FILE.npy, --metric euclidean|cosine|manhattan|dot-product\
|binary-quantized-euclidean|binary-quantized-cosine|binary-quantized-manhattan|hamming, \
--generator clustered|embeddings|low-rank, --n N, --dimensions D, --queries Q, --trees T, --split-after S, --seed S";

impl Options {
    /// Parses `--flag value` pairs over the defaults.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, Box<dyn Error>> {
        let mut options = Options::default();
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value; {USAGE}"));
            match flag.as_str() {
                "--data" => options.data = Some(value()?.into()),
                "--metric" => options.metric = value()?,
                "--generator" => options.generator = value()?,
                "--n" => options.n = value()?.parse()?,
                "--dimensions" => options.dimensions = value()?.parse()?,
                "--queries" => options.queries = value()?.parse()?,
                "--trees" => options.trees = Some(value()?.parse()?),
                "--split-after" => options.split_after = Some(value()?.parse()?),
                "--seed" => options.seed = value()?.parse()?,
                other => return Err(format!("unknown option {other}; {USAGE}").into()),
            }
        }
        Ok(options)
    }
}

/// One point of the recall / speed curve.
#[derive(Debug, Clone)]
pub struct Point {
    pub search_k: usize,
    pub recall: f64,
    pub qps: f64,
    /// Exact distances computed per query.
    pub exact: f64,
}

/// Everything one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub dataset: String,
    pub metric: &'static str,
    pub n: usize,
    pub dimensions: usize,
    pub n_trees: usize,
    pub build: Duration,
    pub disk_bytes: u64,
    /// The bytes of the pages the database uses (the file also holds
    /// LMDB's free pages).
    pub page_bytes: u64,
    pub raw_bytes: u64,
    /// The process's peak resident memory after the build, data included.
    pub peak_rss_bytes: Option<u64>,
    pub curve: Vec<Point>,
}

/// The peak resident set size of this process (Linux), in bytes.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Loads the data, builds an index, and sweeps `search_k`.
pub fn measure(options: &Options) -> Result<Report, Box<dyn Error>> {
    match options.metric.as_str() {
        "euclidean" => measure_with::<Euclidean>(options),
        "cosine" => measure_with::<Cosine>(options),
        "manhattan" => measure_with::<Manhattan>(options),
        "dot-product" => measure_with::<DotProduct>(options),
        "binary-quantized-euclidean" => measure_with::<BinaryQuantizedEuclidean>(options),
        "binary-quantized-cosine" => measure_with::<BinaryQuantizedCosine>(options),
        "binary-quantized-manhattan" => measure_with::<BinaryQuantizedManhattan>(options),
        "hamming" => measure_with::<Hamming>(options),
        other => Err(format!("unknown metric {other}; {USAGE}").into()),
    }
}

fn load(options: &Options, metric: &str) -> Result<data::Dataset, Box<dyn Error>> {
    Ok(match &options.data {
        Some(path) if path.extension().is_some_and(|e| e == "npy") => {
            data::read_npy_dataset(path, options.queries, options.seed)?
        }
        Some(dir) => data::read_texmex(dir, metric)?,
        None => match options.generator.as_str() {
            "clustered" => data::clustered(options.n, options.queries, options.dimensions, options.seed),
            "embeddings" => data::embeddings(options.n, options.queries, options.dimensions, options.seed),
            "low-rank" => data::low_rank(options.n, options.queries, options.dimensions, options.seed),
            other => return Err(format!("unknown generator {other}; {USAGE}").into()),
        },
    })
}

/// The exact `f32` metric a distance is measured against: itself, or the
/// one a distance over bits approximates (cosine for Hamming, since the
/// signs of a vector keep its direction).
pub fn truth_metric(metric: &str) -> &str {
    match metric {
        "hamming" => "cosine",
        other => other.strip_prefix("binary-quantized-").unwrap_or(other),
    }
}

fn measure_with<D: Distance>(options: &Options) -> Result<Report, Box<dyn Error>> {
    let metric = D::NAME;
    let dataset = load(options, truth_metric(metric))?;
    let truth = match &dataset.ground_truth {
        Some(truth) => truth.clone(),
        None => data::brute_force(&dataset, truth_metric(metric), 10),
    };
    let (n, dimensions) = (dataset.base.len(), dataset.base.dimensions);

    let raw_bytes = (n * dimensions * 4) as u64;
    let (_dir, env, db) = temporary::database::<D>((raw_bytes as usize * 4).max(1 << 30))?;

    let start = Instant::now();
    let mut wtxn = env.write_txn()?;
    let writer = Writer::<D>::new(db, 0, dimensions);
    for i in 0..n {
        writer.add_item(&mut wtxn, i as u32, dataset.base.get(i))?;
    }
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
    let build = start.elapsed();
    let peak_rss_bytes = peak_rss();
    let disk_bytes = env.real_disk_size()?;
    let page_bytes = {
        let rtxn = env.read_txn()?;
        let stat = db.stat(&rtxn)?;
        (stat.branch_pages + stat.leaf_pages + stat.overflow_pages) as u64 * u64::from(stat.page_size)
    };

    let rtxn = env.read_txn()?;
    let reader = Reader::<D>::open(&rtxn, 0, db)?;
    let mut curve = Vec::new();
    let mut searcher = Searcher::new();
    // Shares of the items, then the default.
    let default_k = reader.nns(10).effective_search_k();
    let mut efforts: Vec<usize> = [n / 200, n / 100, n / 50, n / 20, n / 10, n / 5].map(|k| k.max(10)).to_vec();
    efforts.retain(|&k| k < default_k.min(n));
    efforts.push(default_k.min(n));
    efforts.dedup();
    for search_k in efforts {
        let search_k = NonZeroUsize::new(search_k).unwrap_or(NonZeroUsize::MIN);
        let mut found = Vec::new();
        let mut elapsed = Duration::ZERO;
        let (mut rounds, mut exact) = (0, 0);
        while elapsed < Duration::from_millis(300) || rounds == 0 {
            found.clear();
            let start = Instant::now();
            for q in 0..dataset.queries.len() {
                let query = dataset.queries.get(q);
                let answer = reader.nns(10).search_k(search_k).by_vector_with(&rtxn, query, &mut searcher)?;
                exact += searcher.stats().exact_distances;
                found.push(answer.into_iter().map(|(id, _)| id).collect::<Vec<_>>());
            }
            elapsed += start.elapsed();
            rounds += 1;
        }
        let queries = (rounds * dataset.queries.len()) as f64;
        let (qps, exact) = (queries / elapsed.as_secs_f64(), exact as f64 / queries);
        curve.push(Point { search_k: search_k.get(), recall: data::recall_at(10, &truth, &found), qps, exact });
    }
    Ok(Report {
        dataset: dataset.name,
        metric,
        n,
        dimensions,
        n_trees: reader.n_trees(),
        build,
        disk_bytes,
        page_bytes,
        raw_bytes,
        peak_rss_bytes,
        curve,
    })
}

/// The benchmarks' entry point: `--child ARGS` measures one run and prints
/// its report; otherwise each of `runs` (made from the arguments) is run in
/// a child process of its own, so that the peak memory each reports is its
/// own, and the JSON lines of all come last.
pub fn bench_main(runs: impl FnOnce(&[String]) -> Vec<Vec<String>>) -> Result<(), Box<dyn Error>> {
    // `cargo bench` passes `--bench`; it means nothing here.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if args.first().is_some_and(|a| a == "--child") {
        let report = measure(&Options::parse(args[1..].iter().cloned())?)?;
        report.print();
        for line in report.json_lines() {
            println!("JSON {line}");
        }
        return Ok(());
    }
    let mut json = Vec::new();
    for run in runs(&args) {
        let output = std::process::Command::new(std::env::current_exe()?).arg("--child").args(&run).output()?;
        if !output.status.success() {
            return Err(format!("run {run:?} failed: {}", String::from_utf8_lossy(&output.stderr)).into());
        }
        for line in String::from_utf8(output.stdout)?.lines() {
            match line.strip_prefix("JSON ") {
                Some(object) => json.push(object.to_string()),
                None => println!("{line}"),
            }
        }
    }
    println!("JSON lines:");
    for line in json {
        println!("{line}");
    }
    Ok(())
}

const MIB: f64 = (1 << 20) as f64;

impl Report {
    /// A paragraph and a Markdown table.
    pub fn print(&self) {
        println!(
            "{} ({} x {}, {}, {} kernels): {} trees built in {:.2} s; {:.1} MiB on disk ({:.2}x the raw vectors, {:.2}x in used pages); peak RSS {}",
            self.dataset,
            self.n,
            self.dimensions,
            self.metric,
            spinney::kernel_implementation(),
            self.n_trees,
            self.build.as_secs_f64(),
            self.disk_bytes as f64 / MIB,
            self.disk_bytes as f64 / self.raw_bytes as f64,
            self.page_bytes as f64 / self.raw_bytes as f64,
            self.peak_rss_bytes.map_or("unknown".into(), |b| format!("{:.0} MiB", b as f64 / MIB)),
        );
        if truth_metric(self.metric) != self.metric {
            println!("Recall against the exact {} neighbours of the f32 vectors.", truth_metric(self.metric));
        }
        println!(
            "\n| search_k | recall@10 | queries/s | ms/query | exact distances/query |\n| ---: | ---: | ---: | ---: | ---: |"
        );
        for point in &self.curve {
            let ms = 1000.0 / point.qps;
            println!("| {} | {:.3} | {:.0} | {ms:.3} | {:.0} |", point.search_k, point.recall, point.qps, point.exact);
        }
        println!();
    }

    /// One JSON object per curve point.
    pub fn json_lines(&self) -> Vec<String> {
        self.curve
            .iter()
            .map(|p| {
                format!(
                    concat!(
                        "{{\"engine\":\"spinney\",\"dataset\":\"{}\",\"metric\":\"{}\",\"n\":{},\"dimensions\":{},",
                        "\"n_trees\":{},\"build_s\":{:.3},\"disk_bytes\":{},\"page_bytes\":{},\"raw_bytes\":{},\"peak_rss_bytes\":{},",
                        "\"search_k\":{},\"recall_at_10\":{:.4},\"qps\":{:.1},\"exact_per_query\":{:.1}}}"
                    ),
                    self.dataset,
                    self.metric,
                    self.n,
                    self.dimensions,
                    self.n_trees,
                    self.build.as_secs_f64(),
                    self.disk_bytes,
                    self.page_bytes,
                    self.raw_bytes,
                    self.peak_rss_bytes.map_or("null".into(), |b| b.to_string()),
                    p.search_k,
                    p.recall,
                    p.qps,
                    p.exact
                )
            })
            .collect()
    }
}
