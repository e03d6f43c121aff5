//! What a command says when it fails: one line, and the exit code.

use std::fmt::Display;
use std::path::Path;

/// A failed command.
#[derive(Debug)]
pub struct Failure {
    /// One line: what went wrong and what to do.
    pub message: String,
    /// The process's exit code.
    pub code: u8,
}

/// The result of a command.
pub type Outcome<T = ()> = Result<T, Failure>;

/// The exit code of an error.
pub const ERROR: u8 = 1;
/// The exit code of `check` finding a problem.
pub const CHECK_FAILED: u8 = 3;
/// The exit code of a build cancelled by Ctrl-C (128 + SIGINT, as shells do).
pub const CANCELLED: u8 = 130;

impl Failure {
    /// A failure with exit code 1.
    pub fn new(message: impl Display) -> Failure {
        Failure { message: message.to_string(), code: ERROR }
    }

    /// The failure of reading or writing `path`.
    pub fn file(path: &Path, error: impl Display) -> Failure {
        Failure::new(format!("{}: {error}", path.display()))
    }
}

impl From<spinney::Error> for Failure {
    fn from(error: spinney::Error) -> Failure {
        match error {
            spinney::Error::MapFull => Failure::new(
                "the database is full: run the command again with a larger --map-size (e.g. --map-size 256GiB)",
            ),
            spinney::Error::BuildCancelled => {
                Failure { message: "the build was cancelled; the committed index is as it was".into(), code: CANCELLED }
            }
            other => Failure::new(other),
        }
    }
}

impl From<spinney::heed::Error> for Failure {
    fn from(error: spinney::heed::Error) -> Failure {
        Failure::from(spinney::Error::from(error))
    }
}
