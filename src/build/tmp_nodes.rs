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

/// The node file of a tree being grown. The file is created by the first
/// node written: most tree updates write none.
pub(crate) struct TmpNodes {
    file: Option<BufWriter<File>>,
    lens: Vec<u32>,
    scratch: Vec<u8>,
    dir: Option<PathBuf>,
}

impl TmpNodes {
    /// Nodes to be written to an anonymous file in `dir`, or in the system's
    /// temporary directory.
    pub fn new(dir: Option<&Path>) -> TmpNodes {
        TmpNodes { file: None, lens: Vec::new(), scratch: Vec::new(), dir: dir.map(Path::to_path_buf) }
    }

    fn file(&mut self) -> Result<&mut BufWriter<File>> {
        let file = match self.file.take() {
            Some(file) => file,
            None => {
                let file = match &self.dir {
                    Some(dir) => tempfile::tempfile_in(dir),
                    None => tempfile::tempfile(),
                };
                BufWriter::new(file.map_err(|source| Error::TempFile { dir: self.dir.clone(), source })?)
            }
        };
        Ok(self.file.insert(file))
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
        let scratch = std::mem::take(&mut self.scratch);
        let written = self.file()?.write_all(&scratch);
        self.scratch = scratch;
        if let Err(e) = written {
            return Err(self.io_error(e));
        }
        self.lens.push(len);
        Ok(id)
    }

    /// Flushes the file.
    pub fn finish(self) -> Result<TreeNodes> {
        let TmpNodes { file, lens, dir, .. } = self;
        match file.map(BufWriter::into_inner).transpose() {
            Ok(file) => Ok(TreeNodes { file, lens, dir }),
            Err(e) => Err(Error::TempFile { dir, source: e.into_error() }),
        }
    }
}

/// The finished node file of one tree.
pub(crate) struct TreeNodes {
    file: Option<File>,
    lens: Vec<u32>,
    dir: Option<PathBuf>,
}

impl TreeNodes {
    /// Reads the whole file back; iterate its nodes with [`TreeNodes::nodes`].
    pub fn read(&mut self) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        let Some(file) = &mut self.file else { return Ok(bytes) };
        let read = file.seek(SeekFrom::Start(0)).and_then(|_| file.read_to_end(&mut bytes));
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
