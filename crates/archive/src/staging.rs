//! The staging area: where an object is written while it arrives.
//!
//! A staged file is the archive's write-ahead intent. It is fsync'd, and its
//! directory too, before the object is linked into the blob store; it is
//! removed once the catalog has committed. After a crash, a staged file whose
//! blob made it into the store is finished (indexed); any other is discarded
//! — its sender never got a success answer.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{IngestError, IngestErrorKind};

/// Buffered bytes are written out in blocks of this size.
const WRITE_BLOCK: usize = 1 << 20;

pub(crate) fn prepare(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    yunying_blob::FsStore::open(dir).map(|_| ())
}

/// An object being received. Feed it with [`Staged::write`], then hand it to
/// [`crate::Archive::ingest`]. Dropping it removes the file.
pub struct Staged {
    path: PathBuf,
    file: Option<File>,
    buf: Vec<u8>,
    hasher: Sha256,
    /// Bytes received (what the size limit applies to).
    len: u64,
    /// Bytes written to the file (received + a preamble added, if any).
    written: u64,
    limit: u64,
    institution: Option<i64>,
}

impl Staged {
    pub(crate) fn create(dir: &Path, institution: Option<i64>, limit: u64) -> Result<Staged, IngestError> {
        let name = format!("{}-i{}.dcm", uuid::Uuid::new_v4().simple(), institution.unwrap_or(0));
        let path = dir.join(name);
        let file = File::create(&path).map_err(|e| IngestError::io("cannot create a staging file", e))?;
        Ok(Staged {
            path,
            file: Some(file),
            buf: Vec::with_capacity(64 * 1024),
            hasher: Sha256::new(),
            len: 0,
            written: 0,
            limit,
            institution,
        })
    }

    /// Appends received bytes. Blocks on disk I/O once a block is full: call
    /// from a blocking context, or use [`Staged::write_async`].
    pub fn write(&mut self, data: &[u8]) -> Result<(), IngestError> {
        self.len += data.len() as u64;
        if self.len > self.limit {
            return Err(IngestError::new(
                IngestErrorKind::OutOfResources,
                format!("object larger than the {} bytes this archive accepts", self.limit),
            ));
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= WRITE_BLOCK {
            self.flush_buf()?;
        }
        Ok(())
    }

    /// Appends received bytes from async code: hashing and buffering inline,
    /// disk writes on the blocking pool.
    pub async fn write_async(mut self, data: &[u8]) -> Result<Staged, IngestError> {
        self.len += data.len() as u64;
        if self.len > self.limit {
            return Err(IngestError::new(
                IngestErrorKind::OutOfResources,
                format!("object larger than the {} bytes this archive accepts", self.limit),
            ));
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= WRITE_BLOCK {
            self = tokio::task::spawn_blocking(move || {
                let r = self.flush_buf();
                r.map(|_| self)
            })
            .await
            .map_err(|e| IngestError::internal("staging task failed", e))??;
        }
        Ok(self)
    }

    fn flush_buf(&mut self) -> Result<(), IngestError> {
        if self.written == 0 && needs_preamble(&self.buf) {
            // A Part-10 stream that starts with its meta group, without the
            // 128-byte preamble and "DICM" (some clients write it so): the
            // data set is kept byte for byte; the standard framing is added
            // so that what we serve back is a valid DICOM file.
            let mut framed = Vec::with_capacity(self.buf.len() + 132);
            framed.extend_from_slice(&[0u8; 128]);
            framed.extend_from_slice(b"DICM");
            framed.extend_from_slice(&self.buf);
            self.buf = framed;
        }
        if let Some(f) = self.file.as_mut()
            && !self.buf.is_empty()
        {
            self.hasher.update(&self.buf);
            f.write_all(&self.buf).map_err(|e| IngestError::io("cannot write the staging file", e))?;
            self.written += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes what remains and makes the file durable (file and directory fsync).
    pub(crate) fn finish(&mut self) -> Result<(), IngestError> {
        self.flush_buf()?;
        if let Some(f) = self.file.take() {
            f.sync_all().map_err(|e| IngestError::io("cannot fsync the staging file", e))?;
        }
        let dir = self.path.parent().expect("staging file has a directory");
        yunying_blob_sync_dir(dir).map_err(|e| IngestError::io("cannot fsync the staging directory", e))?;
        Ok(())
    }

    pub(crate) fn sha256_hex(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    /// Bytes of the staged object (after [`Staged::finish`], as stored).
    pub fn len(&self) -> u64 {
        self.written.max(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn institution(&self) -> Option<i64> {
        self.institution
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        // Not fsync'd: a removal lost in a crash is cleaned by recovery.
        let _ = fs::remove_file(&self.path);
    }
}

fn yunying_blob_sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// True for a stream that starts with the file meta group (0002,xxxx) in
/// explicit VR little endian instead of a preamble and "DICM".
fn needs_preamble(head: &[u8]) -> bool {
    if head.len() >= 132 && &head[128..132] == b"DICM" {
        return false;
    }
    head.len() >= 8 && head[0] == 0x02 && head[1] == 0x00 && head[4].is_ascii_uppercase() && head[5].is_ascii_uppercase()
}

/// The institution id recorded in a staged file's name (`0` = default).
pub(crate) fn institution_from_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".dcm")?;
    let (_, i) = stem.rsplit_once("-i")?;
    i.parse().ok().filter(|i| *i > 0)
}
