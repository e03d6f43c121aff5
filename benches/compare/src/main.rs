//! spinney, arroy 0.9 and hannoy 0.3 on the same data, on the same machine,
//! in one run: build time, peak memory, size on disk, and recall@10 with
//! single-threaded queries per second over a sweep of search effort
//! (`search_k` for the tree indexes, `ef_search` for hannoy's graph).
//!
//! ```text
//! cargo run --release                                   # generated 100k x 128 and 50k x 768
//! cargo run --release -- --data ../../../shared/data/siftsmall
//! cargo run --release -- --data vectors.npy --metric cosine
//! ```
//!
//! Options: `--data DIR|FILE.npy`, `--metric euclidean|cosine`, `--n N`,
//! `--dimensions D` (generated data), `--queries Q`, `--trees T` (both tree
//! indexes; spinney's default for the data otherwise), `--engines
//! spinney,arroy,hannoy`. Each engine builds and queries in a child process
//! of its own, so its peak memory is its own. Results print as Markdown
//! tables, then as JSON lines.

#[path = "../../../examples/support/data.rs"]
mod data;

use std::error::Error;
use std::num::NonZeroUsize;
use std::process::Command;
use std::time::{Duration, Instant};

use data::Dataset;
use spinney::heed::{CommitOrAbort, Env, EnvOpenOptions, RoTxn, RwTxn, WithTls};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// What a child measures.
struct Run {
    data: Option<String>,
    metric: String,
    n: usize,
    dimensions: usize,
    queries: usize,
    trees: Option<usize>,
}

fn parse(args: &[String]) -> Result<(Run, Vec<String>)> {
    let mut run =
        Run { data: None, metric: "euclidean".into(), n: 100_000, dimensions: 128, queries: 200, trees: None };
    let mut engines = vec!["spinney".to_string(), "arroy".into(), "hannoy".into()];
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--data" => run.data = Some(value()?),
            "--metric" => run.metric = value()?,
            "--n" => run.n = value()?.parse()?,
            "--dimensions" => run.dimensions = value()?.parse()?,
            "--queries" => run.queries = value()?.parse()?,
            "--trees" => run.trees = Some(value()?.parse()?),
            "--engines" => engines = value()?.split(',').map(str::to_string).collect(),
            "--bench" => {}
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok((run, engines))
}

fn load(run: &Run) -> Result<Dataset> {
    Ok(match &run.data {
        Some(path) if path.ends_with(".npy") => data::read_npy_dataset(path.as_ref(), run.queries, 42)?,
        Some(dir) => data::read_texmex(dir.as_ref(), &run.metric)?,
        None => data::clustered(run.n, run.queries, run.dimensions, 42),
    })
}

/// Resident memory now and at its peak, in bytes (Linux).
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap_or_default();
        line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).unwrap_or(0) * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Forgets the peak resident memory so far (Linux), so that the peak read
/// after a build is the build's.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn open_env(dir: &std::path::Path, dataset: &Dataset) -> Result<Env<WithTls>> {
    let raw = dataset.base.values.len() * 4;
    // SAFETY: each engine opens its own fresh directory, once, in its own process.
    Ok(unsafe { EnvOpenOptions::new().map_size((raw * 8).max(1 << 30)).open(dir)? })
}

fn create<KC: 'static, DC: 'static>(env: &Env<WithTls>) -> Result<spinney::heed::Database<'static, KC, DC>> {
    Ok(env
        .create_databases_and_commit(env.write_txn()?, |opener, wtxn| {
            opener.create_database(wtxn, None).map(CommitOrAbort::<_, ()>::Commit)
        })?
        .unwrap_commit())
}

/// One point of a recall / speed curve.
struct Point {
    effort: usize,
    recall: f64,
    qps: f64,
}

/// Runs every query, single-threaded, for at least half a second.
fn sweep_point(
    dataset: &Dataset,
    truth: &[Vec<u32>],
    effort: usize,
    mut query: impl FnMut(&[f32]) -> Result<Vec<u32>>,
) -> Result<Point> {
    let mut found = Vec::new();
    let mut elapsed = Duration::ZERO;
    let mut rounds = 0;
    while elapsed < Duration::from_millis(500) || rounds == 0 {
        found.clear();
        let start = Instant::now();
        for q in 0..dataset.queries.len() {
            found.push(query(dataset.queries.get(q))?);
        }
        elapsed += start.elapsed();
        rounds += 1;
    }
    let qps = (rounds * dataset.queries.len()) as f64 / elapsed.as_secs_f64();
    Ok(Point { effort, recall: data::recall_at(10, truth, &found), qps })
}

/// What a build cost.
struct BuildCost {
    build: Duration,
    rss_before: u64,
    peak_rss: u64,
    disk: u64,
}

struct Measured {
    cost: BuildCost,
    effort_name: &'static str,
    curve: Vec<Point>,
}

/// Runs `build` (load the items, build) in a write transaction and commits
/// it; measures its time, the resident memory before it and at its peak, and
/// the file size after.
fn timed_build(env: &Env<WithTls>, build: impl FnOnce(&mut RwTxn) -> Result<()>) -> Result<BuildCost> {
    let (rss_before, _) = rss();
    reset_peak_rss();
    let start = Instant::now();
    let mut wtxn = env.write_txn()?;
    build(&mut wtxn)?;
    wtxn.commit()?;
    let build = start.elapsed();
    let (_, peak_rss) = rss();
    Ok(BuildCost { build, rss_before, peak_rss, disk: env.real_disk_size()? })
}

/// One point per search effort; `query(effort, vector)` answers one query.
fn curve(
    dataset: &Dataset,
    truth: &[Vec<u32>],
    efforts: impl IntoIterator<Item = usize>,
    query: impl Fn(usize, &[f32]) -> Result<Vec<u32>>,
) -> Result<Vec<Point>> {
    efforts.into_iter().map(|effort| sweep_point(dataset, truth, effort, |q| query(effort, q))).collect()
}

fn tree_efforts(trees: usize) -> Vec<usize> {
    [1, 2, 4, 8, 16, 32].iter().map(|f| 10 * trees * f).collect()
}

fn search_k(effort: usize) -> Result<NonZeroUsize> {
    Ok(NonZeroUsize::new(effort).ok_or("zero search_k")?)
}

fn run_spinney<D: spinney::Distance>(dataset: &Dataset, truth: &[Vec<u32>], trees: usize) -> Result<Measured> {
    use rand::SeedableRng;
    let dir = tempfile::tempdir()?;
    let env = open_env(dir.path(), dataset)?;
    let db: spinney::Database<'static, D> = create(&env)?;
    let cost = timed_build(&env, |wtxn| {
        let writer = spinney::Writer::<D>::new(db, 0, dataset.base.dimensions);
        for i in 0..dataset.base.len() {
            writer.append_item(wtxn, i as u32, dataset.base.get(i))?;
        }
        Ok(writer.builder(&mut rand::rngs::StdRng::seed_from_u64(42)).n_trees(trees).build(wtxn)?)
    })?;
    let rtxn = env.read_txn()?;
    let reader = spinney::Reader::<D>::open(&rtxn, 0, db)?;
    let curve = curve(dataset, truth, tree_efforts(trees), |effort, q| {
        Ok(reader.nns(10).search_k(search_k(effort)?).by_vector(&rtxn, q)?.into_iter().map(|r| r.0).collect())
    })?;
    Ok(Measured { cost, effort_name: "search_k", curve })
}

fn run_arroy<D: arroy::Distance>(dataset: &Dataset, truth: &[Vec<u32>], trees: usize) -> Result<Measured> {
    use rand010::SeedableRng;
    let dir = tempfile::tempdir()?;
    let env = open_env(dir.path(), dataset)?;
    let db: arroy::Database<D> = create(&env)?;
    let cost = timed_build(&env, |wtxn| {
        let writer = arroy::Writer::<D>::new(db, 0, dataset.base.dimensions);
        for i in 0..dataset.base.len() {
            writer.add_item(wtxn, i as u32, dataset.base.get(i))?;
        }
        Ok(writer.builder(&mut rand010::rngs::StdRng::seed_from_u64(42)).n_trees(trees).build(wtxn)?)
    })?;
    let rtxn: RoTxn<WithTls> = env.read_txn()?;
    let reader = arroy::Reader::<D>::open(&rtxn, 0, db)?;
    let curve = curve(dataset, truth, tree_efforts(trees), |effort, q| {
        Ok(reader.nns(10).search_k(search_k(effort)?).by_vector(&rtxn, q)?.into_iter().map(|r| r.0).collect())
    })?;
    Ok(Measured { cost, effort_name: "search_k", curve })
}

fn run_hannoy<D: hannoy::Distance>(dataset: &Dataset, truth: &[Vec<u32>]) -> Result<Measured> {
    use rand010::SeedableRng;
    let dir = tempfile::tempdir()?;
    let env = open_env(dir.path(), dataset)?;
    let db: hannoy::Database<D> = create(&env)?;
    let cost = timed_build(&env, |wtxn| {
        let writer = hannoy::Writer::<D>::new(db, 0, dataset.base.dimensions);
        for i in 0..dataset.base.len() {
            writer.add_item(wtxn, i as u32, dataset.base.get(i))?;
        }
        let mut rng = rand010::rngs::StdRng::seed_from_u64(42);
        Ok(writer.builder(&mut rng).ef_construction(100).build::<16, 32>(wtxn)?)
    })?;
    let rtxn = env.read_txn()?;
    let reader = hannoy::Reader::<D>::open(&rtxn, 0, db)?;
    let curve = curve(dataset, truth, [10, 20, 40, 80, 160, 320, 640], |ef, q| {
        Ok(reader.nns(10).ef_search(ef).by_vector(&rtxn, q)?.nns.into_iter().map(|r| r.0).collect())
    })?;
    Ok(Measured { cost, effort_name: "ef_search", curve })
}

/// The child: one engine on one dataset; prints JSON lines.
fn child(engine: &str, run: &Run) -> Result<()> {
    let dataset = load(run)?;
    let truth = match &dataset.ground_truth {
        Some(truth) => truth.clone(),
        None => data::brute_force(&dataset, &run.metric, 10),
    };
    let trees = run.trees.unwrap_or_else(|| {
        spinney::default_n_trees::<spinney::distances::Euclidean>(dataset.base.len() as u64, dataset.base.dimensions)
    });
    let cosine = run.metric == "cosine";
    let measured = match (engine, cosine) {
        ("spinney", false) => run_spinney::<spinney::distances::Euclidean>(&dataset, &truth, trees)?,
        ("spinney", true) => run_spinney::<spinney::distances::Cosine>(&dataset, &truth, trees)?,
        ("arroy", false) => run_arroy::<arroy::distances::Euclidean>(&dataset, &truth, trees)?,
        ("arroy", true) => run_arroy::<arroy::distances::Cosine>(&dataset, &truth, trees)?,
        ("hannoy", false) => run_hannoy::<hannoy::distances::Euclidean>(&dataset, &truth)?,
        ("hannoy", true) => run_hannoy::<hannoy::distances::Cosine>(&dataset, &truth)?,
        (other, _) => return Err(format!("unknown engine {other}").into()),
    };
    let settings = match engine {
        "hannoy" => "M=16 M0=32 ef_construction=100".to_string(),
        _ => format!("{trees} trees"),
    };
    for point in &measured.curve {
        println!(
            concat!(
                "{{\"engine\":\"{}\",\"settings\":\"{}\",\"dataset\":\"{}\",\"metric\":\"{}\",\"n\":{},",
                "\"dimensions\":{},\"build_s\":{:.3},\"rss_before_bytes\":{},\"peak_rss_bytes\":{},",
                "\"disk_bytes\":{},\"raw_bytes\":{},\"effort\":\"{}\",\"value\":{},\"recall_at_10\":{:.4},",
                "\"qps\":{:.1}}}"
            ),
            engine,
            settings,
            dataset.name,
            run.metric,
            dataset.base.len(),
            dataset.base.dimensions,
            measured.cost.build.as_secs_f64(),
            measured.cost.rss_before,
            measured.cost.peak_rss,
            measured.cost.disk,
            dataset.base.values.len() * 4,
            measured.effort_name,
            point.effort,
            point.recall,
            point.qps
        );
    }
    Ok(())
}

/// Reads one field of a JSON line written by `child`.
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let key = format!("\"{name}\":");
    let start = line.find(&key).map_or(line.len(), |at| at + key.len());
    let rest = &line[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim_matches('"')
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--child") {
        let engine = args.get(1).ok_or("--child needs an engine")?;
        let (run, _) = parse(&args[2..])?;
        return child(engine, &run);
    }
    let (_, engines) = parse(&args)?;
    let explicit = args.iter().any(|a| a == "--data" || a == "--n" || a == "--dimensions");
    let datasets: Vec<Vec<String>> = if explicit {
        vec![args.clone()]
    } else {
        let with = |n: &str, d: &str| {
            let mut run = vec!["--n".to_string(), n.into(), "--dimensions".into(), d.into()];
            run.extend(args.iter().cloned());
            run
        };
        vec![with("100000", "128"), with("50000", "768")]
    };
    let mut lines = Vec::new();
    for dataset_args in &datasets {
        let mut table = Vec::new();
        for engine in &engines {
            eprintln!("{engine}: building and querying {dataset_args:?}");
            let output =
                Command::new(std::env::current_exe()?).arg("--child").arg(engine).args(dataset_args).output()?;
            if !output.status.success() {
                return Err(format!("{engine} failed: {}", String::from_utf8_lossy(&output.stderr)).into());
            }
            let stdout = String::from_utf8(output.stdout)?;
            table.extend(stdout.lines().map(str::to_string));
        }
        if let Some(first) = table.first() {
            println!(
                "\n### {} ({} x {}, {})\n",
                field(first, "dataset"),
                field(first, "n"),
                field(first, "dimensions"),
                field(first, "metric")
            );
        }
        println!(
            "| engine | settings | build s | peak RSS MiB (before build) | disk MiB (x raw) | effort | recall@10 | queries/s |"
        );
        println!("| --- | --- | ---: | ---: | ---: | --- | ---: | ---: |");
        let mib = |bytes: &str| bytes.parse::<f64>().unwrap_or(0.0) / f64::from(1 << 20);
        for line in &table {
            let disk = mib(field(line, "disk_bytes"));
            let raw = mib(field(line, "raw_bytes"));
            println!(
                "| {} | {} | {} | {:.0} ({:.0}) | {:.1} ({:.2}x) | {} {} | {} | {} |",
                field(line, "engine"),
                field(line, "settings"),
                field(line, "build_s"),
                mib(field(line, "peak_rss_bytes")),
                mib(field(line, "rss_before_bytes")),
                disk,
                disk / raw,
                field(line, "effort"),
                field(line, "value"),
                field(line, "recall_at_10"),
                field(line, "qps"),
            );
        }
        lines.extend(table);
    }
    println!("\nJSON lines:");
    for line in lines {
        println!("{line}");
    }
    Ok(())
}
