//! Each tree grows into its own temporary file, numbered locally from 0.
//!
//! Node ids inside a file are positions in that file; the single-threaded
//! write at the end of the build gives each tree a base and shifts the child
//! ids of its splits, so ids never depend on which thread ran first.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::node::Node;
use crate::{Distance, Result};

/// The node file of a tree being grown.
pub(crate) struct TmpNodes {
    file: BufWriter<File>,
    lens: Vec<u32>,
    scratch: Vec<u8>,
    dir: Option<PathBuf>,
}

impl TmpNodes {
    /// A new anonymous file in `dir`, or in the system's temporary directory.
    pub fn new(dir: Option<&Path>) -> Result<TmpNodes> {
        let file = match dir {
            Some(dir) => tempfile::tempfile_in(dir),
            None => tempfile::tempfile(),
        };
        let dir = dir.map(Path::to_path_buf);
        match file {
            Ok(file) => Ok(TmpNodes { file: BufWriter::new(file), lens: Vec::new(), scratch: Vec::new(), dir }),
            Err(source) => Err(Error::TempFile { dir, source }),
        }
    }

    fn io_error(&self, source: std::io::Error) -> Error {
        Error::TempFile { dir: self.dir.clone(), source }
    }

    /// Appends a node; returns its local id.
    pub fn push<D: Distance>(&mut self, node: &Node<'_, D>) -> Result<u32> {
        self.scratch.clear();
        node.encode_into(&mut self.scratch);
        // Encoded nodes are far below 4 GiB; ids are below 2^32 because every
        // node holds at least one item or splits two non-empty sides.
        let len =
            u32::try_from(self.scratch.len()).map_err(|_| self.io_error(std::io::ErrorKind::FileTooLarge.into()))?;
        let id = u32::try_from(self.lens.len()).map_err(|_| self.io_error(std::io::ErrorKind::FileTooLarge.into()))?;
        if let Err(e) = self.file.write_all(&self.scratch) {
            return Err(self.io_error(e));
        }
        self.lens.push(len);
        Ok(id)
    }

    /// Flushes the file; `root` is the local id of the tree's root.
    pub fn finish(self, root: u32) -> Result<TreeNodes> {
        let TmpNodes { file, lens, dir, .. } = self;
        match file.into_inner() {
            Ok(file) => Ok(TreeNodes { file, lens, root, dir }),
            Err(e) => Err(Error::TempFile { dir, source: e.into_error() }),
        }
    }
}

/// The finished node file of one tree.
pub(crate) struct TreeNodes {
    file: File,
    lens: Vec<u32>,
    /// The local id of the root.
    pub root: u32,
    dir: Option<PathBuf>,
}

impl TreeNodes {
    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// Reads the whole file back; iterate its nodes with [`TreeNodes::nodes`].
    pub fn read(&mut self) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        let read = self.file.seek(SeekFrom::Start(0)).and_then(|_| self.file.read_to_end(&mut bytes));
        match read {
            Ok(_) => Ok(bytes),
            Err(source) => Err(Error::TempFile { dir: self.dir.clone(), source }),
        }
    }

    /// The encoded nodes in `bytes` (from [`TreeNodes::read`]), by local id.
    pub fn nodes<'b>(&'b self, bytes: &'b [u8]) -> impl Iterator<Item = &'b [u8]> + 'b {
        let mut at = 0usize;
        self.lens.iter().map(move |&len| {
            let start = at.min(bytes.len());
            at = at.saturating_add(len as usize);
            &bytes[start..at.min(bytes.len())]
        })
    }
}
