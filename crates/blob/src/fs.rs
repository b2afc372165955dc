//! The filesystem blob store: one file per blob under a root directory.
//!
//! Durability: a blob is linked (or, across filesystems, copied and fsync'd)
//! into place, then its directory — and any directory created for it — is
//! fsync'd, so a blob that `put_*` reported is on disk.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};

use crate::{BlobError, BlobStore, ByteStream, Result, validate_key};

/// Blobs as files under `root`.
#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
}

const READ_CHUNK: usize = 1 << 20;

fn io_err(key: &str) -> impl FnOnce(io::Error) -> BlobError + '_ {
    move |source| {
        if source.kind() == io::ErrorKind::NotFound {
            BlobError::NotFound(key.to_string())
        } else {
            BlobError::Io { key: key.to_string(), source }
        }
    }
}

/// fsync of a directory, so that entries created in it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` and its missing parents, fsyncing each parent that gained an entry.
fn create_dirs_durably(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs_durably(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

impl FsStore {
    /// A store rooted at `root` (created if missing).
    pub fn open(root: impl Into<PathBuf>) -> io::Result<FsStore> {
        let root = root.into();
        create_dirs_durably(&root)?;
        Ok(FsStore { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    fn put_file_blocking(&self, key: &str, staged: &Path) -> Result<()> {
        let dest = self.path(key)?;
        let dir = dest.parent().expect("a key has a parent").to_path_buf();
        create_dirs_durably(&dir).map_err(io_err(key))?;
        match fs::hard_link(staged, &dest) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let have = fs::metadata(&dest).map_err(io_err(key))?.len();
                let want = fs::metadata(staged).map_err(io_err(key))?.len();
                if have == want {
                    return Ok(());
                }
                return Err(BlobError::Io {
                    key: key.to_string(),
                    source: io::Error::other(format!("a different blob ({have} bytes) already has this key")),
                });
            }
            Err(_) => {
                // Another filesystem (or no hard links): copy through a temp file.
                let tmp = dest.with_extension("part");
                {
                    let mut src = File::open(staged).map_err(io_err(key))?;
                    let mut out = File::create(&tmp).map_err(io_err(key))?;
                    io::copy(&mut src, &mut out).map_err(io_err(key))?;
                    out.sync_all().map_err(io_err(key))?;
                }
                fs::rename(&tmp, &dest).map_err(io_err(key))?;
            }
        }
        sync_dir(&dir).map_err(io_err(key))?;
        Ok(())
    }

    fn put_bytes_blocking(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let dest = self.path(key)?;
        let dir = dest.parent().expect("a key has a parent").to_path_buf();
        create_dirs_durably(&dir).map_err(io_err(key))?;
        let tmp = dir.join(format!(".{}.{}.tmp", dest.file_name().unwrap().to_string_lossy(), std::process::id()));
        {
            let mut out = File::create(&tmp).map_err(io_err(key))?;
            out.write_all(bytes).map_err(io_err(key))?;
            out.sync_all().map_err(io_err(key))?;
        }
        fs::rename(&tmp, &dest).map_err(io_err(key))?;
        sync_dir(&dir).map_err(io_err(key))?;
        Ok(())
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(BlobError::Io { key: String::new(), source: io::Error::other(format!("blob task failed: {e}")) })
    })
}

fn list_dir(root: &Path, dir: &Path, out: &mut Vec<String>) -> io::Result<()> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in rd {
        let entry = entry?;
        let ft = entry.file_type()?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.ends_with(".part") {
            continue; // temp files of writes in progress
        }
        if ft.is_dir() {
            list_dir(root, &path, out)?;
        } else if ft.is_file()
            && let Ok(rel) = path.strip_prefix(root)
        {
            out.push(rel.to_string_lossy().replace(std::path::MAIN_SEPARATOR, "/"));
        }
    }
    Ok(())
}

#[async_trait]
impl BlobStore for FsStore {
    fn describe(&self) -> String {
        format!("fs:{}", self.root.display())
    }

    async fn put_file(&self, key: &str, staged: &Path) -> Result<()> {
        let (me, key, staged) = (self.clone(), key.to_string(), staged.to_path_buf());
        blocking(move || me.put_file_blocking(&key, &staged)).await
    }

    async fn put_bytes(&self, key: &str, bytes: Bytes) -> Result<()> {
        let (me, key) = (self.clone(), key.to_string());
        blocking(move || me.put_bytes_blocking(&key, &bytes)).await
    }

    async fn get(&self, key: &str) -> Result<ByteStream> {
        let path = self.path(key)?;
        let k = key.to_string();
        let file = blocking(move || File::open(&path).map_err(io_err(&k))).await?;
        let stream = futures::stream::unfold(Some(file), |state| async move {
            let mut file = state?;
            let res = tokio::task::spawn_blocking(move || {
                let mut buf = BytesMut::zeroed(READ_CHUNK);
                let mut filled = 0;
                while filled < READ_CHUNK {
                    match file.read(&mut buf[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return (Err(e), None),
                    }
                }
                buf.truncate(filled);
                if filled == 0 { (Ok(None), None) } else { (Ok(Some(buf.freeze())), Some(file)) }
            })
            .await;
            match res {
                Ok((Ok(Some(b)), next)) => Some((Ok(b), next)),
                Ok((Ok(None), _)) => None,
                Ok((Err(e), _)) => Some((Err(e), None)),
                Err(e) => Some((Err(io::Error::other(e.to_string())), None)),
            }
        });
        Ok(Box::pin(stream))
    }

    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes> {
        let path = self.path(key)?;
        let k = key.to_string();
        blocking(move || {
            let mut f = File::open(&path).map_err(io_err(&k))?;
            let size = f.metadata().map_err(io_err(&k))?.len();
            if offset.checked_add(len).is_none_or(|end| end > size) {
                return Err(BlobError::RangeOutside { key: k, offset, len, size });
            }
            f.seek(SeekFrom::Start(offset)).map_err(io_err(&k))?;
            let mut buf = BytesMut::zeroed(len as usize);
            f.read_exact(&mut buf).map_err(io_err(&k))?;
            Ok(buf.freeze())
        })
        .await
    }

    async fn head(&self, key: &str) -> Result<Option<u64>> {
        let path = self.path(key)?;
        let k = key.to_string();
        blocking(move || match fs::metadata(&path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&k)(e)),
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        let k = key.to_string();
        blocking(move || match fs::remove_file(&path) {
            Ok(()) => {
                if let Some(dir) = path.parent() {
                    sync_dir(dir).map_err(io_err(&k))?;
                }
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&k)(e)),
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        blocking(move || {
            // Walk only the directory the prefix names, then filter.
            let dir_part = match prefix.rfind('/') {
                Some(i) => &prefix[..i],
                None => "",
            };
            let start = if dir_part.is_empty() { root.clone() } else { root.join(dir_part) };
            let mut out = Vec::new();
            list_dir(&root, &start, &mut out).map_err(io_err(&prefix))?;
            out.retain(|k| k.starts_with(&prefix));
            Ok(out)
        })
        .await
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.path(key).ok()
    }

    /// Files carry no checksum: the catalog's is the reference.
    async fn recorded_sha256(&self, key: &str) -> Result<Option<crate::Sha256Digest>> {
        match self.head(key).await? {
            Some(_) => Ok(None),
            None => Err(BlobError::NotFound(key.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    #[tokio::test]
    async fn contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(super::FsStore::open(dir.path().join("blobs")).unwrap());
        crate::contract::run_all(store, dir.path()).await;
    }
}
