//! The roads out: whole objects, frames, bulk data and metadata, read from
//! the locations recorded at ingest (no re-parsing of stored objects).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use yunying_blob::ByteStream;
use yunying_dicom::frames::FrameIndex;
use yunying_index::{InstanceRow, Query, Scope, SeriesRow, StoredInstance, StudyRow};

use crate::{Archive, ArchiveError};

/// Stands for the DICOMweb base URL in stored metadata; replaced per request,
/// so that `BulkDataURI`s are absolute and follow the host the client used.
pub const METADATA_BASE_PLACEHOLDER: &str = "@@YUNYING_BASE@@";

/// One frame's bytes as stored (encapsulated frames stay compressed).
#[derive(Debug, Clone)]
pub struct FrameData {
    pub bytes: Bytes,
    /// Transfer syntax the bytes are in.
    pub transfer_syntax: String,
}

impl Archive {
    /// Studies matching a query.
    pub async fn query_studies(&self, q: &Query) -> Result<Vec<StudyRow>, ArchiveError> {
        Ok(self.index.query_studies(q).await?)
    }

    /// How many studies match a query (ignoring its paging).
    pub async fn count_studies(&self, q: &Query) -> Result<u64, ArchiveError> {
        Ok(self.index.count_studies(q).await?)
    }

    /// Series matching a query.
    pub async fn query_series(&self, q: &Query) -> Result<Vec<SeriesRow>, ArchiveError> {
        Ok(self.index.query_series(q).await?)
    }

    /// Instances matching a query.
    pub async fn query_instances(&self, q: &Query) -> Result<Vec<InstanceRow>, ArchiveError> {
        Ok(self.index.query_instances(q).await?)
    }

    /// The current instances in scope; `NotFound` when there are none.
    pub async fn stored(&self, scope: &Scope) -> Result<Vec<StoredInstance>, ArchiveError> {
        let found = self.index.stored_instances(scope).await?;
        if found.is_empty() {
            return Err(ArchiveError::NotFound(describe(scope)));
        }
        Ok(found)
    }

    /// The stored object, as received.
    pub async fn open_object(&self, inst: &StoredInstance) -> Result<ByteStream, ArchiveError> {
        Ok(self.blobs.get(&inst.blob_key).await?)
    }

    /// A byte range of the stored object.
    pub async fn object_range(&self, inst: &StoredInstance, offset: u64, len: u64) -> Result<Bytes, ArchiveError> {
        Ok(self.blobs.get_range(&inst.blob_key, offset, len).await?)
    }

    /// Frames `numbers` (1-based) of an instance, in the stored transfer
    /// syntax; native frames of big-endian objects come out little endian.
    pub async fn frames(&self, inst: &StoredInstance, numbers: &[u32]) -> Result<Vec<FrameData>, ArchiveError> {
        let index: FrameIndex = serde_json::from_str(&inst.frames)
            .map_err(|e| ArchiveError::Internal(format!("frame index of {} unreadable: {e}", inst.sop_uid)))?;
        match &index {
            FrameIndex::None => {
                return Err(ArchiveError::NotFound(format!("instance {} has no pixel data", inst.sop_uid)));
            }
            FrameIndex::Unavailable { reason } => {
                return Err(ArchiveError::NotAcceptable(format!(
                    "frames of instance {} cannot be served separately: {reason}",
                    inst.sop_uid
                )));
            }
            _ => {}
        }
        let inflated = if index.inflated() { Some(self.inflated(inst).await?) } else { None };
        let mut out = Vec::with_capacity(numbers.len());
        for &n in numbers {
            let ranges = index.frame(n).ok_or_else(|| {
                ArchiveError::NotFound(format!(
                    "instance {} has {} frame(s); frame {n} does not exist",
                    inst.sop_uid,
                    index.count()
                ))
            })?;
            let mut bytes = if ranges.len() == 1 && inflated.is_none() {
                let (o, l) = ranges[0];
                self.blobs.get_range(&inst.blob_key, o, l).await?
            } else {
                let mut buf = BytesMut::with_capacity(ranges.iter().map(|r| r.1 as usize).sum());
                for (o, l) in ranges {
                    match &inflated {
                        Some(data) => {
                            let (s, e) = (o as usize, (o + l) as usize);
                            let slice = data.get(s..e).ok_or_else(|| {
                                ArchiveError::Internal(format!("frame {n} of {} is outside the data set", inst.sop_uid))
                            })?;
                            buf.extend_from_slice(slice);
                        }
                        None => buf.extend_from_slice(&self.blobs.get_range(&inst.blob_key, o, l).await?),
                    }
                }
                buf.freeze()
            };
            let swap = index.swap() as usize;
            if swap > 1 {
                let mut b = BytesMut::from(&bytes[..]);
                for c in b.chunks_exact_mut(swap) {
                    c.reverse();
                }
                bytes = b.freeze();
            }
            out.push(FrameData { bytes, transfer_syntax: inst.transfer_syntax.clone() });
        }
        Ok(out)
    }

    /// A bulk value of an instance by its path (`7FE00010`, `00540016/0/00181078`).
    pub async fn bulk(&self, inst: &StoredInstance, path: &str) -> Result<Bytes, ArchiveError> {
        let map: serde_json::Value = serde_json::from_str(&inst.bulk).unwrap_or_default();
        let loc = map["values"][path]
            .as_array()
            .and_then(|a| Some((a.first()?.as_u64()?, a.get(1)?.as_u64()?)))
            .ok_or_else(|| ArchiveError::NotFound(format!("instance {} has no bulk value {path}", inst.sop_uid)))?;
        if map["inflated"].as_bool() == Some(true) {
            let data = self.inflated(inst).await?;
            let (s, e) = (loc.0 as usize, (loc.0 + loc.1) as usize);
            return data
                .get(s..e)
                .map(Bytes::copy_from_slice)
                .ok_or_else(|| ArchiveError::Internal(format!("bulk value {path} is outside the data set")));
        }
        Ok(self.blobs.get_range(&inst.blob_key, loc.0, loc.1).await?)
    }

    /// The metadata of every instance in scope as one DICOM JSON array, with
    /// bulk data URIs rooted at `base` (e.g. `http://host/dicom-web`).
    pub async fn metadata_json(&self, scope: &Scope, base: &str) -> Result<Bytes, ArchiveError> {
        let parts = self.index.metadata(scope).await?;
        if parts.is_empty() {
            return Err(ArchiveError::NotFound(describe(scope)));
        }
        let total: usize = parts.iter().map(|p| p.len() + 1).sum::<usize>() + 2;
        let mut joined = Vec::with_capacity(total);
        joined.push(b'[');
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                joined.push(b',');
            }
            joined.extend_from_slice(p.as_bytes());
        }
        joined.push(b']');
        Ok(Bytes::from(replace_all(&joined, METADATA_BASE_PLACEHOLDER.as_bytes(), base.as_bytes())))
    }

    /// The inflated data set of a deflated object (bounded by the parse limits).
    async fn inflated(&self, inst: &StoredInstance) -> Result<Arc<Vec<u8>>, ArchiveError> {
        let len = inst.size_bytes as u64;
        let all = self.blobs.get_range(&inst.blob_key, 0, len).await?;
        let opts = self.settings.parse.clone();
        let data = tokio::task::spawn_blocking(move || {
            yunying_dicom::parse::inflated_dataset(&mut std::io::Cursor::new(&all[..]), len, &opts)
        })
        .await
        .map_err(|e| ArchiveError::Internal(e.to_string()))?
        .map_err(|e| ArchiveError::Internal(format!("cannot inflate {}: {e}", inst.sop_uid)))?;
        Ok(Arc::new(data))
    }
}

fn describe(scope: &Scope) -> String {
    match (&scope.series_uid, &scope.sop_uid) {
        (_, Some(sop)) => format!("instance {sop} not found in study {}", scope.study_uid),
        (Some(se), None) => format!("series {se} not found in study {}", scope.study_uid),
        (None, None) => format!("study {} not found", scope.study_uid),
    }
}

/// Replaces every occurrence of `from` in `data`.
fn replace_all(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let finder = memchr::memmem::Finder::new(from);
    let mut out = Vec::with_capacity(data.len() + data.len() / 20);
    let mut last = 0;
    for at in finder.find_iter(data) {
        out.extend_from_slice(&data[last..at]);
        out.extend_from_slice(to);
        last = at + from.len();
    }
    out.extend_from_slice(&data[last..]);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces() {
        assert_eq!(super::replace_all(b"a@@Xb@@X", b"@@X", b"http://h"), b"ahttp://hbhttp://h".to_vec());
    }
}
