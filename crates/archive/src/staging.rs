//! The staging area: where an object is written while it arrives.
//!
//! A staged file is the archive's write-ahead intent. It is fsync'd, and its
//! directory too, before the object is linked into the blob store; it is
//! removed once the catalog has committed. After a crash, a staged file whose
//! blob made it into the store is finished (indexed); any other is discarded
//! — its sender never got a success answer.
//!
//! Received chunks are kept as they came (no copying) until a block is full;
//! an object that fits in one block (a CT slice, an X-ray) is written once,
//! and its header is then parsed from memory instead of being read back.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::error::{IngestError, IngestErrorKind};

/// Received bytes are written out in blocks of this size.
const WRITE_BLOCK: usize = 4 << 20;

pub(crate) fn prepare(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    yunying_blob::FsStore::open(dir).map(|_| ())
}

/// An object being received. Feed it with [`Staged::write`] or
/// [`Staged::write_bytes`], then hand it to [`crate::Archive::ingest`].
/// Dropping it removes the file.
pub struct Staged {
    path: PathBuf,
    file: Option<File>,
    /// Chunks received and not yet written.
    pending: Vec<Bytes>,
    pending_len: usize,
    /// How many of `pending` are hashed already (hashing follows arrival,
    /// once the framing question is settled).
    hashed: usize,
    /// Whether the standard framing had to be added (decided on the first
    /// 132 bytes).
    framing_decided: bool,
    hasher: Sha256,
    /// Bytes received (what the size limit applies to).
    received: u64,
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
            pending: Vec::new(),
            pending_len: 0,
            hashed: 0,
            framing_decided: false,
            hasher: Sha256::new(),
            received: 0,
            written: 0,
            limit,
            institution,
        })
    }

    fn accept(&mut self, n: usize) -> Result<(), IngestError> {
        self.received += n as u64;
        if self.received > self.limit {
            return Err(IngestError::new(
                IngestErrorKind::OutOfResources,
                format!("object larger than the {} bytes this archive accepts", self.limit),
            ));
        }
        Ok(())
    }

    /// Appends received bytes (copied). Blocks on disk I/O when a block is
    /// full: call from a blocking context, or use [`Staged::write_bytes`].
    pub fn write(&mut self, data: &[u8]) -> Result<(), IngestError> {
        self.accept(data.len())?;
        self.pending.push(Bytes::copy_from_slice(data));
        self.pending_len += data.len();
        self.hash_arrived();
        if self.pending_len >= WRITE_BLOCK {
            self.flush()?;
        }
        Ok(())
    }

    /// Appends a received chunk without copying it; disk writes happen on
    /// the blocking pool when a block is full.
    pub async fn write_bytes(mut self, data: Bytes) -> Result<Staged, IngestError> {
        self.accept(data.len())?;
        self.pending_len += data.len();
        self.pending.push(data);
        self.hash_arrived();
        if self.pending_len >= WRITE_BLOCK {
            self = tokio::task::spawn_blocking(move || self.flush().map(|_| self))
                .await
                .map_err(|e| IngestError::internal("staging task failed", e))??;
        }
        Ok(self)
    }

    /// Adds the standard framing in front of the pending chunks when the
    /// object came as a meta group without preamble and "DICM" (some clients
    /// write it so): the data set is kept byte for byte, and what we serve
    /// back is a valid DICOM file. Decided once, on the first 132 bytes (or
    /// at the end, for a shorter object).
    fn decide_framing(&mut self, at_end: bool) {
        if self.framing_decided || (!at_end && self.pending_len < 132) {
            return;
        }
        self.framing_decided = true;
        if self.written == 0 && needs_preamble(&self.pending) {
            let mut framing = vec![0u8; 128];
            framing.extend_from_slice(b"DICM");
            self.pending.insert(0, Bytes::from(framing));
            self.pending_len += 132;
        }
    }

    /// Hashes what arrived, in order, as soon as the framing is settled (so
    /// that little hashing is left when the last byte comes).
    fn hash_arrived(&mut self) {
        self.decide_framing(false);
        if !self.framing_decided {
            return;
        }
        for c in &self.pending[self.hashed..] {
            self.hasher.update(c);
        }
        self.hashed = self.pending.len();
    }

    /// Writes the pending chunks (hashing what was not yet). Returns the chunks written.
    fn flush(&mut self) -> Result<Vec<Bytes>, IngestError> {
        self.decide_framing(true);
        self.hash_arrived();
        let chunks = std::mem::take(&mut self.pending);
        self.hashed = 0;
        if let Some(f) = self.file.as_mut() {
            for c in &chunks {
                f.write_all(c).map_err(|e| IngestError::io("cannot write the staging file", e))?;
            }
        }
        self.written += self.pending_len as u64;
        self.pending_len = 0;
        Ok(chunks)
    }

    /// Prepares the end of staging: the object is completely hashed, and
    /// what remains to be written and made durable becomes a [`Finishing`]
    /// job (run it on a blocking thread), while [`Contents`] says where the
    /// object can be parsed meanwhile: from memory when it came in one
    /// block, else from the file (whose earlier blocks are written, and whose
    /// last one is written here, in the blocking caller).
    pub(crate) fn begin_finish(&mut self) -> Result<(Finishing, Contents), IngestError> {
        self.decide_framing(true);
        self.hash_arrived();
        let file = self.file.take();
        if self.written == 0 {
            let chunks = std::mem::take(&mut self.pending);
            self.hashed = 0;
            self.written = self.pending_len as u64;
            self.pending_len = 0;
            let memory = chunks.clone();
            return Ok((Finishing { file, chunks }, Contents::Memory(memory)));
        }
        self.file = file;
        self.flush()?;
        let file = self.file.take();
        Ok((Finishing { file, chunks: Vec::new() }, Contents::File(self.path.clone(), self.written)))
    }

    /// True while nothing was written: the object is still all in memory.
    pub(crate) fn in_one_block(&self) -> bool {
        self.written == 0
    }

    pub(crate) fn sha256_hex(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    /// Bytes of the object (after `finish`: as stored, framing included).
    pub fn len(&self) -> u64 {
        (self.written + self.pending_len as u64).max(self.received)
    }

    pub fn is_empty(&self) -> bool {
        self.received == 0
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

/// Where a finished object can be read while it is made durable.
pub(crate) enum Contents {
    /// The whole object, as received (it fitted in one write block).
    Memory(Vec<Bytes>),
    /// The staged file and its length.
    File(PathBuf, u64),
}

/// The last write of a staged object and its fsync.
///
/// Only the file is fsync'd, not the staging directory: the durable name of
/// an object is its blob link (whose directory is fsync'd), and a staged
/// name lost in a crash only means that recovery cannot finish an object
/// whose sender never got an answer (its blob, if linked, is found again
/// when the sender retries, or by a re-index).
pub(crate) struct Finishing {
    file: Option<File>,
    chunks: Vec<Bytes>,
}

impl Finishing {
    pub(crate) fn run(self) -> Result<(), IngestError> {
        let Some(mut f) = self.file else { return Ok(()) };
        for c in &self.chunks {
            f.write_all(c).map_err(|e| IngestError::io("cannot write the staging file", e))?;
        }
        f.sync_all().map_err(|e| IngestError::io("cannot fsync the staging file", e))
    }
}

/// `Read + Seek` over a list of chunks, without joining them.
pub(crate) struct ChunkReader<'a> {
    chunks: &'a [Bytes],
    len: u64,
    pos: u64,
}

impl<'a> ChunkReader<'a> {
    pub(crate) fn new(chunks: &'a [Bytes]) -> Self {
        ChunkReader { chunks, len: chunks.iter().map(|c| c.len() as u64).sum(), pos: 0 }
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }
}

impl Read for ChunkReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut at = 0u64;
        for c in self.chunks {
            let end = at + c.len() as u64;
            if self.pos < end {
                let off = (self.pos - at) as usize;
                let n = (c.len() - off).min(out.len());
                out[..n].copy_from_slice(&c[off..off + n]);
                self.pos += n as u64;
                return Ok(n);
            }
            at = end;
        }
        Ok(0)
    }
}

impl Seek for ChunkReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let next = match to {
            SeekFrom::Start(p) => p as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
            SeekFrom::End(d) => self.len as i128 + d as i128,
        };
        if next < 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"));
        }
        self.pos = next as u64;
        Ok(self.pos)
    }
}

/// True for a stream that starts with the file meta group (0002,xxxx) in
/// explicit VR little endian instead of a preamble and "DICM".
fn needs_preamble(chunks: &[Bytes]) -> bool {
    let mut head = [0u8; 132];
    let mut n = 0;
    for c in chunks {
        let take = (132 - n).min(c.len());
        head[n..n + take].copy_from_slice(&c[..take]);
        n += take;
        if n == 132 {
            break;
        }
    }
    if n == 132 && &head[128..132] == b"DICM" {
        return false;
    }
    n >= 8 && head[0] == 0x02 && head[1] == 0x00 && head[4].is_ascii_uppercase() && head[5].is_ascii_uppercase()
}

/// The institution id recorded in a staged file's name (`0` = default).
pub(crate) fn institution_from_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".dcm")?;
    let (_, i) = stem.rsplit_once("-i")?;
    i.parse().ok().filter(|i| *i > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_reader_reads_and_seeks_across_chunks() {
        let chunks = vec![Bytes::from_static(b"abc"), Bytes::from_static(b""), Bytes::from_static(b"defgh")];
        let mut r = ChunkReader::new(&chunks);
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all, b"abcdefgh");
        r.seek(SeekFrom::Start(2)).unwrap();
        let mut two = [0u8; 3];
        r.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"cde");
        r.seek(SeekFrom::Current(-4)).unwrap();
        r.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"bcd");
    }
}
