//! `spinney build`: builds an index with a progress bar per step, and
//! cancels cleanly on Ctrl-C.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use spinney::{Distance, IndexInfo, MainStep, Reader, WriterProgress};

use crate::IndexArgs;
use crate::database::{self, Opened, with_index_distance};
use crate::failure::{Failure, Outcome};
use crate::inspect::human_bytes;

/// The options of a build.
#[derive(Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub target: IndexArgs,
    /// The number of trees, 1 to 4096 (default: from the items and dimensions).
    #[arg(long, value_parser = crate::parse_trees)]
    pub trees: Option<usize>,
    /// The most items a bucket holds (default: from the dimensions).
    #[arg(long)]
    pub split_after: Option<usize>,
    /// The seed of the random planes: the same seed gives the same trees.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Threads growing trees (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Memory the trees may use while they grow, e.g. 2GiB.
    #[arg(long, value_parser = crate::parse_bytes)]
    pub memory: Option<usize>,
}

/// Set by the Ctrl-C handler; the build polls it.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Runs `spinney build`.
pub fn run(args: &BuildArgs) -> Outcome {
    let opened = database::existing(&args.target.db)?;
    let info = opened.index_info(args.target.index)?;
    ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::Relaxed))
        .map_err(|e| Failure::new(format!("cannot listen for Ctrl-C: {e}")))?;
    let mut threads = rayon::ThreadPoolBuilder::new();
    if let Some(n) = args.threads {
        threads = threads.num_threads(n);
    }
    let pool = threads.build().map_err(|e| Failure::new(format!("cannot start the build threads: {e}")))?;
    pool.install(|| with_index_distance!(&info, build_index(args, &opened, &info)))
}

fn build_index<D: Distance>(args: &BuildArgs, opened: &Opened, info: &IndexInfo) -> Outcome {
    let index = args.target.index;
    let started = Instant::now();
    let display = StepDisplay::new();
    let mut wtxn = opened.env.write_txn()?;
    let dimensions = info.dimensions.ok_or_else(|| Failure::new(format!("index {index} has no items to build")))?;
    let writer = spinney::Writer::<D>::new(opened.db::<D>(), index, dimensions);
    let mut builder = writer.builder(&mut rand::rng());
    builder.seed(args.seed);
    if let Some(trees) = args.trees {
        builder.n_trees(trees);
    }
    if let Some(split_after) = args.split_after {
        builder.split_after(split_after);
    }
    if let Some(memory) = args.memory {
        builder.available_memory(memory);
    }
    builder.progress(|progress| display.show(progress)).cancel(|| INTERRUPTED.load(Ordering::Relaxed));
    let built = builder.build(&mut wtxn);
    display.finish();
    // On an error (a cancel included), dropping `wtxn` aborts it.
    built?;
    wtxn.commit()?;

    let elapsed = started.elapsed();
    let rtxn = opened.env.read_txn()?;
    let reader = Reader::open(&rtxn, index, opened.db::<D>())?;
    let (file, used) = opened.disk_usage(&rtxn)?;
    println!(
        "built index {index}: {} items, {} trees in {:.2} s; database file {} ({} used by its indexes)",
        reader.n_items(),
        reader.n_trees(),
        elapsed.as_secs_f64(),
        human_bytes(file),
        human_bytes(used)
    );
    Ok(())
}

/// The name of a step, as shown.
fn step_name(step: MainStep) -> &'static str {
    match step {
        MainStep::RetrievingItems => "reading the changes",
        MainStep::UpdatingTrees => "updating trees",
        MainStep::GrowingTrees => "growing trees",
        MainStep::RemovingOldTrees => "removing old nodes",
        MainStep::WritingNodes => "writing nodes",
        MainStep::WritingMetadata => "writing metadata",
        _ => "building",
    }
}

/// Shows the build's steps: a bar per step on a terminal, a line per step
/// otherwise (what scripts and the tests read).
struct StepDisplay {
    terminal: bool,
    current: Mutex<Option<(MainStep, ProgressBar)>>,
}

impl StepDisplay {
    fn new() -> StepDisplay {
        StepDisplay { terminal: std::io::stderr().is_terminal(), current: Mutex::new(None) }
    }

    fn show(&self, progress: WriterProgress) {
        let mut current = self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if current.as_ref().is_none_or(|(step, _)| *step != progress.main) {
            if let Some((_, bar)) = current.take() {
                bar.finish();
            }
            let bar = match self.terminal {
                true => ProgressBar::new_spinner(),
                false => {
                    eprintln!("step: {}", step_name(progress.main));
                    ProgressBar::hidden()
                }
            };
            bar.set_style(
                ProgressStyle::with_template("{prefix:>20} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}")
                    .expect("a valid template"),
            );
            bar.set_prefix(step_name(progress.main));
            bar.enable_steady_tick(Duration::from_millis(100));
            *current = Some((progress.main, bar));
        }
        if let (Some((_, bar)), Some(sub)) = (current.as_ref(), progress.sub) {
            bar.set_length(sub.total);
            bar.set_position(sub.done);
            bar.set_message(sub.unit);
        }
    }

    fn finish(&self) {
        let mut current = self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, bar)) = current.take() {
            bar.finish();
        }
    }
}
