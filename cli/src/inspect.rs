//! `spinney ls`, `spinney stats` and `spinney check`.

use spinney::{Distance, Reader};

use crate::database::{self, Opened, with_index_distance};
use crate::failure::{CHECK_FAILED, Failure, Outcome};
use crate::{DatabaseArgs, IndexArgs};

/// `bytes` with a binary unit: `1.5 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", units[unit]) }
}

/// Runs `spinney ls`.
pub fn ls(args: &DatabaseArgs) -> Outcome {
    let indexes = database::existing(args)?.indexes()?;
    if indexes.is_empty() {
        println!("no indexes in {}", args.path.display());
        return Ok(());
    }
    println!(
        "{:>5}  {:<27} {:>10} {:>10} {:>6} {:>8} {:>7}",
        "index", "distance", "dimensions", "items", "trees", "pending", "format"
    );
    for info in indexes {
        let dash = || "-".to_string();
        println!(
            "{:>5}  {:<27} {:>10} {:>10} {:>6} {:>8} {:>7}",
            info.index,
            info.distance.unwrap_or_else(dash),
            info.dimensions.map_or_else(dash, |d| d.to_string()),
            info.n_items,
            if info.built { info.n_trees.to_string() } else { "unbuilt".to_string() },
            info.pending_changes,
            info.format_version.map_or_else(|| "none".to_string(), |v| v.to_string()),
        );
    }
    Ok(())
}

/// Runs `spinney stats`.
pub fn stats(args: &IndexArgs) -> Outcome {
    let opened = database::existing(&args.db)?;
    with_index_distance!(&opened.index_info(args.index)?, print_stats(args, &opened))
}

fn print_stats<D: Distance>(args: &IndexArgs, opened: &Opened) -> Outcome {
    let rtxn = opened.env.read_txn()?;
    let reader = Reader::open(&rtxn, args.index, opened.db::<D>())?;
    let stats = reader.stats(&rtxn)?;
    println!("index {} ({}, {} dimensions)", args.index, D::NAME, reader.dimensions());
    println!("  items             {}", reader.n_items());
    println!("  pending changes   {}", reader.pending_changes().len());
    println!("  trees             {}", reader.n_trees());
    if !stats.trees.is_empty() {
        let n = stats.trees.len();
        let depth_max = stats.trees.iter().map(|t| t.depth).max().unwrap_or(0);
        let depth_mean = stats.trees.iter().map(|t| t.depth).sum::<usize>() as f64 / n as f64;
        let buckets = stats.trees.iter().map(|t| t.buckets).sum::<usize>() as f64 / n as f64;
        let largest = stats.trees.iter().map(|t| t.largest_bucket).max().unwrap_or(0);
        let random = stats.trees.iter().map(|t| t.random_splits).sum::<usize>();
        let bytes = stats.trees.iter().map(|t| t.bytes).sum::<u64>();
        println!("  depth             {depth_mean:.1} on average, {depth_max} at most");
        println!("  buckets per tree  {buckets:.0}, the largest holding {largest} items");
        println!("  random splits     {random}");
        println!("  tree bytes        {}", human_bytes(bytes));
    }
    let (file, used) = opened.disk_usage(&rtxn)?;
    println!("  database file     {} ({} used by its indexes)", human_bytes(file), human_bytes(used));
    Ok(())
}

/// Runs `spinney check`.
pub fn check(args: &IndexArgs) -> Outcome {
    let opened = database::existing(&args.db)?;
    with_index_distance!(&opened.index_info(args.index)?, check_index(args, &opened))
}

fn check_index<D: Distance>(args: &IndexArgs, opened: &Opened) -> Outcome {
    let rtxn = opened.env.read_txn()?;
    let found = Reader::open(&rtxn, args.index, opened.db::<D>()).and_then(|reader| reader.check(&rtxn));
    match found {
        Ok(()) => {
            println!("index {}: ok", args.index);
            Ok(())
        }
        Err(spinney::Error::NotBuilt { index }) => {
            Err(Failure::new(format!("index {index} has not been built; run `spinney build` first")))
        }
        Err(error @ spinney::Error::Corrupted { .. }) => {
            Err(Failure { message: format!("index {} failed its check: {error}", args.index), code: CHECK_FAILED })
        }
        Err(other) => Err(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn sizes_print_with_binary_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}
