//! Build progress reporting.

use enum_iterator::Sequence;

/// The steps of a build, in the order they run.
///
/// Iterate them with [`enum_iterator::all`] to draw a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Sequence)]
#[non_exhaustive]
pub enum MainStep {
    /// Reading the changes since the last build, and the items in place.
    RetrievingItems,
    /// Updating the kept trees in parallel for the changed items.
    UpdatingTrees,
    /// Growing the new trees in parallel, each into its own temporary file.
    GrowingTrees,
    /// Removing the freed nodes and the marks of the changes just built.
    RemovingOldTrees,
    /// Writing every node of the new trees into LMDB.
    WritingNodes,
    /// Writing the metadata and the format version, which makes the build visible.
    WritingMetadata,
}

/// Progress inside a step: `done` out of `total` units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubStep {
    /// What is being counted ("trees", "nodes").
    pub unit: &'static str,
    /// How many are done.
    pub done: u64,
    /// How many there are.
    pub total: u64,
}

/// What the build is doing now, passed to the `progress` callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterProgress {
    /// The step.
    pub main: MainStep,
    /// Progress inside the step, where it is counted.
    pub sub: Option<SubStep>,
}
