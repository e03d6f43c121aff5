//! Values a build computes while it only reads, kept in an anonymous
//! temporary file until it writes them.
//!
//! The read layer's new values are made from bytes borrowed from the write
//! transaction (vectors, old chunks), which cannot be written while they
//! are borrowed; and they can be larger than memory. So a build spools
//! them, then copies each into the space LMDB reserves for it.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use heed::RwTxn;

use crate::Result;
use crate::error::Error;
use crate::key::Key;
use crate::store::RawDatabase;

/// Values being written, one after the other. The file is created by the
/// first byte.
pub(crate) struct Spool {
    file: Option<BufWriter<File>>,
    dir: Option<PathBuf>,
    /// The size of each finished value, and of the open one last.
    lens: Vec<u64>,
}

impl Spool {
    /// Values to be written to an anonymous file in `dir`, or in the
    /// system's temporary directory.
    pub fn new(dir: Option<&Path>) -> Spool {
        Spool { file: None, dir: dir.map(Path::to_path_buf), lens: vec![0] }
    }

    fn io_error(&self, source: std::io::Error) -> Error {
        Error::TempFile { dir: self.dir.clone(), source }
    }

    /// Appends `bytes` to the open value.
    pub fn append(&mut self, bytes: &[u8]) -> Result<()> {
        if self.file.is_none() {
            let file = match &self.dir {
                Some(dir) => tempfile::tempfile_in(dir),
                None => tempfile::tempfile(),
            };
            self.file = Some(BufWriter::new(file.map_err(|e| self.io_error(e))?));
        }
        let written = self.file.as_mut().map(|file| file.write_all(bytes));
        if let Some(Err(e)) = written {
            return Err(self.io_error(e));
        }
        *self.lens.last_mut().expect("a spool always has an open value") += bytes.len() as u64;
        Ok(())
    }

    /// Closes the open value and opens the next.
    pub fn next_value(&mut self) {
        self.lens.push(0);
    }

    /// Flushes the file. The open value is kept if it holds anything.
    pub fn finish(mut self) -> Result<Spooled> {
        if self.lens.last() == Some(&0) {
            self.lens.pop();
        }
        let Spool { file, dir, lens } = self;
        match file.map(BufWriter::into_inner).transpose() {
            Ok(file) => Ok(Spooled { file, dir, lens }),
            Err(e) => Err(Error::TempFile { dir, source: e.into_error() }),
        }
    }
}

/// Finished values, ready to be copied into LMDB.
pub(crate) struct Spooled {
    file: Option<File>,
    dir: Option<PathBuf>,
    lens: Vec<u64>,
}

impl Spooled {
    /// Every value's bytes, one after the other, with each value's size.
    #[cfg(test)]
    pub fn read(&mut self) -> Result<(Vec<u8>, &[u64])> {
        let mut bytes = Vec::new();
        if let Some(file) = &mut self.file {
            let read = file.seek(SeekFrom::Start(0)).and_then(|_| file.read_to_end(&mut bytes));
            read.map_err(|source| Error::TempFile { dir: self.dir.clone(), source })?;
        }
        Ok((bytes, &self.lens))
    }

    /// Writes value `i` under `key(i)`, in order, after `change` changed
    /// its bytes.
    pub fn write_changed(
        mut self,
        db: RawDatabase,
        wtxn: &mut RwTxn,
        key: impl Fn(usize) -> Key,
        mut change: impl FnMut(usize, &mut Vec<u8>),
    ) -> Result<()> {
        let dir = self.dir.clone();
        let io_error = |source| Error::TempFile { dir: dir.clone(), source };
        let Some(file) = &mut self.file else { return self.write(db, wtxn, key) };
        file.seek(SeekFrom::Start(0)).map_err(io_error)?;
        let mut buffer = Vec::new();
        for (i, &len) in self.lens.iter().enumerate() {
            buffer.clear();
            file.take(len).read_to_end(&mut buffer).map_err(io_error)?;
            change(i, &mut buffer);
            db.put(wtxn, &key(i), &buffer)?;
        }
        Ok(())
    }

    /// Writes value `i` under `key(i)`, in order.
    pub fn write(mut self, db: RawDatabase, wtxn: &mut RwTxn, key: impl Fn(usize) -> Key) -> Result<()> {
        let dir = self.dir.clone();
        let io_error = |source| Error::TempFile { dir: dir.clone(), source };
        if let Some(file) = &mut self.file {
            file.seek(SeekFrom::Start(0)).map_err(io_error)?;
        }
        for (i, &len) in self.lens.iter().enumerate() {
            let file = self.file.as_mut();
            let size = usize::try_from(len).map_err(|_| io_error(std::io::ErrorKind::FileTooLarge.into()))?;
            db.put_reserved(wtxn, &key(i), size, |space| match file {
                Some(file) => std::io::copy(&mut file.take(len), space).map(drop),
                None => Ok(()),
            })
            .map_err(|e| match e {
                heed::Error::Io(source) => io_error(source),
                other => other.into(),
            })?;
        }
        Ok(())
    }
}
