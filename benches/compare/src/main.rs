//! spinney, arroy 0.9, hannoy 0.3 and an exact scan on the same data, on
//! the same machine, in one run: build time, peak memory (building and
//! querying), size on disk, and recall@10 with single-threaded queries per
//! second over a sweep of search effort (`search_k` and `rerank` for
//! spinney, `search_k` for arroy, `ef_search` for hannoy).
//!
//! ```text
//! cargo run --release                                   # generated 100k x 128 and 50k x 768
//! cargo run --release -- --data ../../../shared/data/siftsmall
//! cargo run --release -- --data ../../../shared/data/pypi-minilm --metric cosine
//! cargo run --release -- --data ../../../shared/data/pypi-minilm --metric cosine --filters
//! ```
//!
//! Options: `--data DIR|FILE.npy`, `--metric euclidean|cosine`, `--n N`,
//! `--dimensions D`, `--generator clustered|embeddings|low-rank` (generated
//! data), `--queries Q`, `--trees T` (both tree indexes; spinney's default
//! and 32 for arroy otherwise), `--engines spinney,arroy,hannoy,exact`,
//! `--filters` (spinney and the exact scan under filters keeping 0.1% to
//! 50% of the items), `--commit-load` (spinney commits its load before
//! building, to compare with a load in the build's transaction), `--memory
//! MIB` (spinney's `available_memory`). After each table, the best queries
//! per second each engine reached at recall@10 0.90, 0.95 and 0.99. For
//! how costs grow: `cargo run --release -- --generator embeddings --metric
//! cosine --dimensions 384 --n 1000000 --engines spinney`. Every engine loads its
//! items with `add_item` in id order, as README tells users to, in the
//! transaction it builds in, and builds and queries in a child process of
//! its own, so its peak memory is its own. Results print as Markdown
//! tables, then as JSON lines.

#[path = "../../../examples/support/data.rs"]
mod data;

use std::error::Error;
use std::num::NonZeroUsize;
use std::process::Command;
use std::time::{Duration, Instant};

use data::Dataset;
use roaring::RoaringBitmap;
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
    filters: bool,
    generator: String,
    /// Commit the load before building (spinney only): a load of more than
    /// about 512 MiB of vectors fills LMDB's transaction otherwise.
    commit_load: bool,
    /// spinney's `available_memory`, in MiB.
    memory: Option<usize>,
}

/// arroy's trees unless `--trees` is given: what spinney grew by default at
/// 384 dimensions before it read partitions (arroy's own default is larger
/// and slower to build).
const ARROY_TREES: usize = 32;

fn parse(args: &[String]) -> Result<(Run, Vec<String>)> {
    let mut run = Run {
        data: None,
        metric: "euclidean".into(),
        n: 100_000,
        dimensions: 128,
        queries: 200,
        trees: None,
        filters: false,
        generator: "clustered".into(),
        commit_load: false,
        memory: None,
    };
    let mut engines = vec!["spinney".to_string(), "arroy".into(), "hannoy".into(), "exact".into()];
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
            "--filters" => run.filters = true,
            "--generator" => run.generator = value()?,
            "--commit-load" => run.commit_load = true,
            "--memory" => run.memory = Some(value()?.parse()?),
            "--bench" => {}
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    if run.filters {
        engines.retain(|engine| engine == "spinney" || engine == "exact");
    }
    Ok((run, engines))
}

fn load(run: &Run) -> Result<Dataset> {
    Ok(match &run.data {
        Some(path) if path.ends_with(".npy") => data::read_npy_dataset(path.as_ref(), run.queries, 42)?,
        Some(dir) => data::read_texmex(dir.as_ref(), &run.metric)?,
        None => match run.generator.as_str() {
            "clustered" => data::clustered(run.n, run.queries, run.dimensions, 42),
            "embeddings" => data::embeddings(run.n, run.queries, run.dimensions, 42),
            "low-rank" => data::low_rank(run.n, run.queries, run.dimensions, 42),
            other => return Err(format!("unknown generator {other}").into()),
        },
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

/// Forgets the peak resident memory so far (Linux), so that the next peak
/// read is the next phase's.
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

/// The bytes of the pages a database uses (the file also holds free pages).
fn used_bytes<KC, DC>(env: &Env<WithTls>, db: spinney::heed::Database<'static, KC, DC>) -> Result<u64> {
    let rtxn = env.read_txn()?;
    let stat = db.stat(&rtxn)?;
    Ok((stat.branch_pages + stat.leaf_pages + stat.overflow_pages) as u64 * u64::from(stat.page_size))
}

/// One point of a recall / speed curve.
struct Point {
    effort: String,
    recall: f64,
    qps: f64,
    /// Codes scored and exact distances per query, where the engine tells.
    work: Option<(f64, f64)>,
}

/// Runs every query, single-threaded, for at least half a second; `query`
/// returns the ids found and, where the engine tells, the codes it scored
/// and the exact distances it computed.
fn sweep_point(
    truth: &[Vec<u32>],
    effort: String,
    mut query: impl FnMut(usize) -> Result<(Vec<u32>, Option<(u64, u64)>)>,
) -> Result<Point> {
    let mut found = Vec::new();
    let mut elapsed = Duration::ZERO;
    let (mut rounds, mut codes, mut exact, mut told) = (0, 0, 0, false);
    while elapsed < Duration::from_millis(500) || rounds == 0 {
        found.clear();
        let start = Instant::now();
        for q in 0..truth.len() {
            let (ids, work) = query(q)?;
            found.push(ids);
            told |= work.is_some();
            codes += work.map_or(0, |(codes, _)| codes);
            exact += work.map_or(0, |(_, exact)| exact);
        }
        elapsed += start.elapsed();
        rounds += 1;
    }
    let queries = (rounds * truth.len()) as f64;
    let work = told.then(|| (codes as f64 / queries, exact as f64 / queries));
    Ok(Point { effort, recall: data::recall_at(10, truth, &found), qps: queries / elapsed.as_secs_f64(), work })
}

/// What a build cost.
struct BuildCost {
    build: Duration,
    /// The part of `build` that loaded the items, where it is apart.
    load: Duration,
    rss_before: u64,
    peak_rss: u64,
    disk: u64,
    used: u64,
}

impl BuildCost {
    /// No build: an exact scan of the vectors in memory.
    fn nothing(rss_before: u64) -> BuildCost {
        BuildCost { build: Duration::ZERO, load: Duration::ZERO, rss_before, peak_rss: rss_before, disk: 0, used: 0 }
    }
}

struct Measured {
    cost: BuildCost,
    /// The peak resident memory while querying.
    query_rss: u64,
    curve: Vec<Point>,
}

/// Runs `build` (load the items, build) in a write transaction and commits
/// it; measures its time, the resident memory before it and at its peak,
/// and the file size after.
fn timed_build(env: &Env<WithTls>, build: impl FnOnce(&mut RwTxn) -> Result<()>) -> Result<BuildCost> {
    timed_load_and_build(env, false, |_| Ok(()), build)
}

/// [`timed_build`] in two steps, `load` then `build`, in one transaction or,
/// with `commit_load`, with a commit between them (counted in the time).
fn timed_load_and_build(
    env: &Env<WithTls>,
    commit_load: bool,
    load: impl FnOnce(&mut RwTxn) -> Result<()>,
    build: impl FnOnce(&mut RwTxn) -> Result<()>,
) -> Result<BuildCost> {
    let (rss_before, _) = rss();
    reset_peak_rss();
    let start = Instant::now();
    let mut wtxn = env.write_txn()?;
    load(&mut wtxn)?;
    let loaded = start.elapsed();
    if commit_load {
        wtxn.commit()?;
        wtxn = env.write_txn()?;
    }
    build(&mut wtxn)?;
    wtxn.commit()?;
    let build = start.elapsed();
    let (_, peak_rss) = rss();
    Ok(BuildCost { build, load: loaded, rss_before, peak_rss, disk: env.real_disk_size()?, used: 0 })
}

/// The curve of `points`, measured after resetting the peak memory; returns
/// it with that peak.
fn query_phase(points: impl FnOnce() -> Result<Vec<Point>>) -> Result<(Vec<Point>, u64)> {
    reset_peak_rss();
    let curve = points()?;
    Ok((curve, rss().1))
}

fn nz(value: usize) -> Result<NonZeroUsize> {
    Ok(NonZeroUsize::new(value).ok_or("zero effort")?)
}

/// A spinney index of the data set, built the way README tells users to.
struct BuiltSpinney<D: spinney::Distance> {
    // Dropped before the directory it lives in.
    env: Env<WithTls>,
    db: spinney::Database<'static, D>,
    cost: BuildCost,
    _dir: tempfile::TempDir,
}

/// Loads every item with `add_item` in id order and builds, in one
/// transaction (or with a commit between, with `--commit-load`), with
/// `trees` or the default tree count.
fn build_spinney<D: spinney::Distance>(dataset: &Dataset, run: &Run) -> Result<BuiltSpinney<D>> {
    use rand::SeedableRng;
    let dir = tempfile::tempdir()?;
    let env = open_env(dir.path(), dataset)?;
    let db: spinney::Database<'static, D> = create(&env)?;
    let writer = spinney::Writer::<D>::new(db, 0, dataset.base.dimensions);
    let load = |wtxn: &mut RwTxn| {
        for i in 0..dataset.base.len() {
            writer.add_item(wtxn, i as u32, dataset.base.get(i))?;
        }
        Ok(())
    };
    let (trees, memory) = (run.trees, run.memory);
    let mut cost = timed_load_and_build(&env, run.commit_load, load, |wtxn| {
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let mut builder = writer.builder(&mut rng);
        if let Some(trees) = trees {
            builder.n_trees(trees);
        }
        if let Some(memory) = memory {
            builder.available_memory(memory << 20);
        }
        Ok(builder.build(wtxn)?)
    })?;
    cost.used = used_bytes(&env, db)?;
    Ok(BuiltSpinney { env, db, cost, _dir: dir })
}

fn run_spinney<D: spinney::Distance>(dataset: &Dataset, truth: &[Vec<u32>], run: &Run) -> Result<Measured> {
    let built = build_spinney::<D>(dataset, run)?;
    let (env, db, cost) = (&built.env, built.db, built.cost);
    let rtxn = env.read_txn()?;
    let reader = spinney::Reader::<D>::open(&rtxn, 0, db)?;
    let n = dataset.base.len();
    // A few thousand codes, shares of the items (an index with codes scores
    // that many codes), the default, every item; then a few with a capped
    // re-ranking.
    let default = reader.nns(10).effective_search_k().min(n);
    let mut efforts: Vec<(usize, Option<usize>)> = [200, 100, 50, 30, 20, 10, 5, 3, 2]
        .iter()
        .map(|&part| ((n / part).max(10), None))
        .chain([1_000, 2_000, 3_000, 5_000, 10_000, 20_000].into_iter().filter(|&k| k < n).map(|k| (k, None)))
        .chain([(default, None), (n, None)])
        .collect();
    efforts.sort_unstable();
    efforts.dedup();
    for rerank in [20, 50, 100] {
        efforts.extend([((n / 20).max(10), Some(rerank)), (n, Some(rerank))]);
    }
    let mut searcher = spinney::Searcher::new();
    let (curve, query_rss) = query_phase(|| {
        efforts
            .iter()
            .map(|&(search_k, rerank)| {
                let effort = match rerank {
                    Some(rerank) => format!("search_k {search_k} rerank {rerank}"),
                    None if search_k == default => format!("search_k {search_k} (default)"),
                    None => format!("search_k {search_k}"),
                };
                sweep_point(truth, effort, |q| {
                    let mut query = reader.nns(10);
                    query.search_k(nz(search_k)?);
                    if let Some(rerank) = rerank {
                        query.rerank(nz(rerank)?);
                    }
                    let found = query.by_vector_with(&rtxn, dataset.queries.get(q), &mut searcher)?;
                    let stats = searcher.stats();
                    Ok((found.into_iter().map(|r| r.0).collect(), Some((stats.codes, stats.exact_distances))))
                })
            })
            .collect()
    })?;
    Ok(Measured { cost, query_rss, curve })
}

fn tree_efforts(trees: usize) -> Vec<usize> {
    [1, 2, 4, 8, 16, 32].iter().map(|f| 10 * trees * f).collect()
}

fn run_arroy<D: arroy::Distance>(dataset: &Dataset, truth: &[Vec<u32>], trees: usize) -> Result<Measured> {
    use rand::SeedableRng;
    let dir = tempfile::tempdir()?;
    let env = open_env(dir.path(), dataset)?;
    let db: arroy::Database<D> = create(&env)?;
    let mut cost = timed_build(&env, |wtxn| {
        let writer = arroy::Writer::<D>::new(db, 0, dataset.base.dimensions);
        for i in 0..dataset.base.len() {
            writer.add_item(wtxn, i as u32, dataset.base.get(i))?;
        }
        Ok(writer.builder(&mut rand::rngs::StdRng::seed_from_u64(42)).n_trees(trees).build(wtxn)?)
    })?;
    cost.used = used_bytes(&env, db)?;
    let rtxn: RoTxn<WithTls> = env.read_txn()?;
    let reader = arroy::Reader::<D>::open(&rtxn, 0, db)?;
    let (curve, query_rss) = query_phase(|| {
        let points = tree_efforts(trees).into_iter().map(|search_k| {
            sweep_point(truth, format!("search_k {search_k}"), |q| {
                let found = reader.nns(10).search_k(nz(search_k)?).by_vector(&rtxn, dataset.queries.get(q))?;
                Ok((found.into_iter().map(|r| r.0).collect(), None))
            })
        });
        points.collect()
    })?;
    Ok(Measured { cost, query_rss, curve })
}

fn run_hannoy<D: hannoy::Distance>(dataset: &Dataset, truth: &[Vec<u32>]) -> Result<Measured> {
    use rand::SeedableRng;
    let dir = tempfile::tempdir()?;
    let env = open_env(dir.path(), dataset)?;
    let db: hannoy::Database<D> = create(&env)?;
    let mut cost = timed_build(&env, |wtxn| {
        let writer = hannoy::Writer::<D>::new(db, 0, dataset.base.dimensions);
        for i in 0..dataset.base.len() {
            writer.add_item(wtxn, i as u32, dataset.base.get(i))?;
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        Ok(writer.builder(&mut rng).ef_construction(100).build::<16, 32>(wtxn)?)
    })?;
    cost.used = used_bytes(&env, db)?;
    let rtxn = env.read_txn()?;
    let reader = hannoy::Reader::<D>::open(&rtxn, 0, db)?;
    let (curve, query_rss) = query_phase(|| {
        let points = [10, 20, 40, 80, 160, 320, 640].into_iter().map(|ef| {
            sweep_point(truth, format!("ef_search {ef}"), |q| {
                let found = reader.nns(10).ef_search(ef).by_vector(&rtxn, dataset.queries.get(q))?;
                Ok((found.nns.into_iter().map(|r| r.0).collect(), None))
            })
        });
        points.collect()
    })?;
    Ok(Measured { cost, query_rss, curve })
}

/// The exact distance kernel of `metric` (smaller is nearer): spinney's
/// fastest implementation of the squared Euclidean distance or the dot
/// product, as a careful exact scan would use.
fn exact_kernel(metric: &str) -> impl Fn(&[f32], &[f32]) -> f32 {
    let kernels = spinney::available_kernels().pop().expect("at least the portable kernels");
    let cosine = metric == "cosine";
    move |a: &[f32], b: &[f32]| {
        let (a, b) = (bytemuck::cast_slice(a), bytemuck::cast_slice(b));
        match cosine {
            true => -(kernels.dot)(a, b) / ((kernels.dot)(b, b).sqrt() + f32::MIN_POSITIVE),
            false => (kernels.l2_squared)(a, b),
        }
    }
}

/// The `k` ids of `ids` nearest to `query`, scoring each exactly.
fn exact_scan(
    dataset: &Dataset,
    distance: &impl Fn(&[f32], &[f32]) -> f32,
    query: &[f32],
    ids: impl Iterator<Item = u32>,
    k: usize,
) -> Vec<u32> {
    let mut scored: Vec<(f32, u32)> = ids.map(|id| (distance(query, dataset.base.get(id as usize)), id)).collect();
    let by_distance = |a: &(f32, u32), b: &(f32, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    if scored.len() > k {
        scored.select_nth_unstable_by(k - 1, by_distance);
        scored.truncate(k);
    }
    scored.sort_unstable_by(by_distance);
    scored.into_iter().map(|(_, id)| id).collect()
}

/// The exact scan: every vector in memory, scored with the fastest kernel.
fn run_exact(dataset: &Dataset, truth: &[Vec<u32>], metric: &str) -> Result<Measured> {
    let distance = exact_kernel(metric);
    let (rss_before, _) = rss();
    let cost = BuildCost::nothing(rss_before);
    let n = dataset.base.len() as u32;
    let (curve, query_rss) = query_phase(|| {
        let point = sweep_point(truth, "every item".into(), |q| {
            Ok((exact_scan(dataset, &distance, dataset.queries.get(q), 0..n, 10), Some((0, u64::from(n)))))
        });
        Ok(vec![point?])
    })?;
    Ok(Measured { cost, query_rss, curve })
}

/// Filters keeping `share` of the items: at random, or the items nearest
/// to a random item (a filter that follows the vectors).
fn filters(dataset: &Dataset, metric: &str) -> Vec<(String, RoaringBitmap)> {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let n = dataset.base.len();
    let distance = exact_kernel(metric);
    let mut out = Vec::new();
    for share in [0.001, 0.01, 0.1, 0.5] {
        let size = ((n as f64 * share) as usize).max(1);
        let random: RoaringBitmap = rand::seq::index::sample(&mut rng, n, size).into_iter().map(|i| i as u32).collect();
        out.push((format!("random {}%", share * 100.0), random));
        let centre = dataset.base.get(rng.random_range(0..n)).to_vec();
        let near = exact_scan(dataset, &distance, &centre, 0..n as u32, size);
        out.push((format!("cluster {}%", share * 100.0), near.into_iter().collect()));
    }
    out
}

/// The filtered sweep: spinney at its defaults, or the exact scan of the
/// filtered items, for each filter; recall against the exact answer.
fn run_filtered<D: spinney::Distance>(dataset: &Dataset, run: &Run, engine: &str) -> Result<Measured> {
    let distance = exact_kernel(&run.metric);
    let filters = filters(dataset, &run.metric);
    let truths: Vec<Vec<Vec<u32>>> = filters
        .iter()
        .map(|(_, filter)| {
            (0..dataset.queries.len())
                .map(|q| exact_scan(dataset, &distance, dataset.queries.get(q), filter.iter(), 10))
                .collect()
        })
        .collect();
    if engine == "exact" {
        let (rss_before, _) = rss();
        let cost = BuildCost::nothing(rss_before);
        let (curve, query_rss) = filtered_sweep(&filters, &truths, |filter, q| {
            let found = exact_scan(dataset, &distance, dataset.queries.get(q), filter.iter(), 10);
            Ok((found, Some((0, filter.len()))))
        })?;
        return Ok(Measured { cost, query_rss, curve });
    }
    let built = build_spinney::<D>(dataset, run)?;
    let (env, db, cost) = (&built.env, built.db, built.cost);
    let rtxn = env.read_txn()?;
    let reader = spinney::Reader::<D>::open(&rtxn, 0, db)?;
    let mut searcher = spinney::Searcher::new();
    let (curve, query_rss) = filtered_sweep(&filters, &truths, |filter, q| {
        let found = reader.nns(10).candidates(filter).by_vector_with(&rtxn, dataset.queries.get(q), &mut searcher)?;
        let stats = searcher.stats();
        Ok((found.into_iter().map(|r| r.0).collect(), Some((stats.codes, stats.exact_distances))))
    })?;
    Ok(Measured { cost, query_rss, curve })
}

/// A point per filter: `answer(filter, q)` gives the ids found for query
/// `q` and the exact distances it computed.
fn filtered_sweep(
    filters: &[(String, RoaringBitmap)],
    truths: &[Vec<Vec<u32>>],
    mut answer: impl FnMut(&RoaringBitmap, usize) -> Result<(Vec<u32>, Option<(u64, u64)>)>,
) -> Result<(Vec<Point>, u64)> {
    query_phase(|| {
        filters
            .iter()
            .zip(truths)
            .map(|((name, filter), truth)| sweep_point(truth, name.clone(), |q| answer(filter, q)))
            .collect()
    })
}

/// The child: one engine on one dataset; prints JSON lines.
fn child(engine: &str, run: &Run) -> Result<()> {
    let dataset = load(run)?;
    let truth = match &dataset.ground_truth {
        Some(truth) => truth[..dataset.queries.len()].to_vec(),
        None => data::brute_force(&dataset, &run.metric, 10),
    };
    let cosine = run.metric == "cosine";
    let (n, dimensions) = (dataset.base.len(), dataset.base.dimensions);
    let default_trees = match cosine {
        true => spinney::default_n_trees::<spinney::distances::Cosine>(n as u64, dimensions),
        false => spinney::default_n_trees::<spinney::distances::Euclidean>(n as u64, dimensions),
    };
    let trees = run.trees.unwrap_or(ARROY_TREES);
    let measured = match (engine, cosine, run.filters) {
        ("spinney", false, true) => run_filtered::<spinney::distances::Euclidean>(&dataset, run, engine)?,
        ("spinney", true, true) => run_filtered::<spinney::distances::Cosine>(&dataset, run, engine)?,
        ("exact", _, true) => run_filtered::<spinney::distances::Euclidean>(&dataset, run, engine)?,
        ("spinney", false, false) => run_spinney::<spinney::distances::Euclidean>(&dataset, &truth, run)?,
        ("spinney", true, false) => run_spinney::<spinney::distances::Cosine>(&dataset, &truth, run)?,
        ("arroy", false, _) => run_arroy::<arroy::distances::Euclidean>(&dataset, &truth, trees)?,
        ("arroy", true, _) => run_arroy::<arroy::distances::Cosine>(&dataset, &truth, trees)?,
        ("hannoy", false, _) => run_hannoy::<hannoy::distances::Euclidean>(&dataset, &truth)?,
        ("hannoy", true, _) => run_hannoy::<hannoy::distances::Cosine>(&dataset, &truth)?,
        ("exact", _, false) => run_exact(&dataset, &truth, &run.metric)?,
        (other, _, _) => return Err(format!("unknown engine {other}").into()),
    };
    let settings = match engine {
        "hannoy" => "M=16 M0=32 ef_construction=100".to_string(),
        "arroy" => format!("{trees} trees"),
        "spinney" => {
            let trees = match run.trees {
                Some(trees) => format!("{trees} trees"),
                None => format!("{default_trees} trees (default)"),
            };
            match run.commit_load {
                true => format!("{trees}, load committed first"),
                false => trees,
            }
        }
        _ => "in memory".to_string(),
    };
    for point in &measured.curve {
        println!(
            concat!(
                "{{\"engine\":\"{}\",\"settings\":\"{}\",\"dataset\":\"{}\",\"metric\":\"{}\",\"n\":{},",
                "\"dimensions\":{},\"build_s\":{:.3},\"load_s\":{:.3},\"rss_before_bytes\":{},\"peak_rss_bytes\":{},",
                "\"query_peak_rss_bytes\":{},\"disk_bytes\":{},\"used_bytes\":{},\"raw_bytes\":{},",
                "\"effort\":\"{}\",\"recall_at_10\":{:.4},\"qps\":{:.1},\"codes_per_query\":{},",
                "\"exact_per_query\":{}}}"
            ),
            engine,
            settings,
            dataset.name,
            run.metric,
            n,
            dimensions,
            measured.cost.build.as_secs_f64(),
            measured.cost.load.as_secs_f64(),
            measured.cost.rss_before,
            measured.cost.peak_rss,
            measured.query_rss,
            measured.cost.disk,
            measured.cost.used,
            dataset.base.values.len() * 4,
            point.effort,
            point.recall,
            point.qps,
            point.work.map_or("null".to_string(), |(codes, _)| format!("{codes:.0}")),
            point.work.map_or("null".to_string(), |(_, exact)| format!("{exact:.0}")),
        );
    }
    Ok(())
}

/// Reads one field of a JSON line written by `child`.
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let key = format!("\"{name}\":");
    let start = line.find(&key).map_or(line.len(), |at| at + key.len());
    let rest = &line[start..];
    let end = match rest.strip_prefix('"') {
        Some(quoted) => quoted.find('"').map_or(rest.len(), |end| end + 2),
        None => rest.find([',', '}']).unwrap_or(rest.len()),
    };
    rest[..end].trim_matches('"')
}

/// The best queries per second each engine reached at recall@10 0.90, 0.95
/// and 0.99, with the effort that reached it, as a table.
fn best_at_recalls(table: &[String], engines: &[String]) {
    println!("\n| engine | best q/s at recall@10 >= 0.90 | >= 0.95 | >= 0.99 |\n| --- | ---: | ---: | ---: |");
    for engine in engines {
        let cells: Vec<String> = [0.90, 0.95, 0.99]
            .iter()
            .map(|&floor| {
                let best = table
                    .iter()
                    .filter(|line| field(line, "engine") == engine)
                    .filter(|line| field(line, "recall_at_10").parse::<f64>().is_ok_and(|recall| recall >= floor))
                    .map(|line| (field(line, "qps").parse::<f64>().unwrap_or(0.0), field(line, "effort")))
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                best.map_or("-".into(), |(qps, effort)| format!("{qps:.0} ({effort})"))
            })
            .collect();
        println!("| {engine} | {} |", cells.join(" | "));
    }
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
            "| engine | settings | build s (of which loading) | peak RSS MiB build (before) | query peak RSS MiB | disk MiB: file (used pages, x raw) | effort | recall@10 | queries/s | codes/query | exact distances/query |"
        );
        println!("| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |");
        let mib = |bytes: &str| bytes.parse::<f64>().unwrap_or(0.0) / f64::from(1 << 20);
        for line in &table {
            let raw = mib(field(line, "raw_bytes"));
            let used = mib(field(line, "used_bytes"));
            let build = match field(line, "load_s") {
                "" | "0.000" => field(line, "build_s").to_string(),
                load => format!("{} ({load})", field(line, "build_s")),
            };
            println!(
                "| {} | {} | {} | {:.0} ({:.0}) | {:.0} | {:.1} ({:.1}, {:.2}x) | {} | {} | {} | {} | {} |",
                field(line, "engine"),
                field(line, "settings"),
                build,
                mib(field(line, "peak_rss_bytes")),
                mib(field(line, "rss_before_bytes")),
                mib(field(line, "query_peak_rss_bytes")),
                mib(field(line, "disk_bytes")),
                used,
                used / raw,
                field(line, "effort"),
                field(line, "recall_at_10"),
                field(line, "qps"),
                field(line, "codes_per_query"),
                field(line, "exact_per_query"),
            );
        }
        best_at_recalls(&table, &engines);
        lines.extend(table);
    }
    println!("\nJSON lines:");
    for line in lines {
        println!("{line}");
    }
    Ok(())
}
