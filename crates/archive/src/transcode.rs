//! Frames in the transfer syntax a client asks for: stored frames as they
//! are when the syntax is the stored one; otherwise decoded and encoded
//! again (`yunying-pixels`), off the async threads, kept a while in the
//! output cache. HTJ2K RPCL frames come from the derived streaming copy
//! when it is made (see [`crate::derive`]).

use bytes::Bytes;
use yunying_index::StoredInstance;
use yunying_pixels::transcode::{self, HTJ2K_LOSSLESS, HTJ2K_LOSSLESS_RPCL};

use crate::{Archive, ArchiveError, FrameData};

/// Native syntaxes are served as explicit little endian frames.
fn served_stored_as(ts: &str) -> &str {
    if yunying_dicom::ts::is_native(ts) { yunying_dicom::ts::EXPLICIT_VR_LE } else { ts }
}

impl Archive {
    /// Whether frames stored in `stored` can be given in `target`.
    pub fn can_transcode(stored: &str, target: &str) -> bool {
        served_stored_as(stored) == served_stored_as(target)
            || (yunying_pixels::decode::is_supported(stored) && transcode::can_encode(target))
    }

    /// Frames (1-based numbers) of an instance in transfer syntax `target`.
    /// [`ArchiveError::NotAcceptable`] when they cannot be: no decoder for
    /// the stored syntax, no encoder for the target, or a colour object
    /// whose frames would contradict its Photometric Interpretation.
    pub async fn frames_in(
        &self,
        inst: &StoredInstance,
        numbers: &[u32],
        target: &str,
    ) -> Result<Vec<FrameData>, ArchiveError> {
        if served_stored_as(&inst.transfer_syntax) == served_stored_as(target) {
            return self.frames(inst, numbers).await;
        }
        if !Self::can_transcode(&inst.transfer_syntax, target) {
            return Err(ArchiveError::NotAcceptable(format!(
                "frames stored as {} cannot be given as {target}",
                inst.transfer_syntax
            )));
        }
        let mut out: Vec<Option<FrameData>> = vec![None; numbers.len()];
        let mut missing = Vec::new();
        for (i, n) in numbers.iter().enumerate() {
            if let Some(bytes) = self.output_cache.get(&frame_cache_key(inst, *n, target)) {
                out[i] = Some(FrameData { bytes, transfer_syntax: target.to_string() });
            } else if streaming(target)
                && let Some(bytes) = self.derived_frame(inst, *n).await?
            {
                self.output_cache.put(&frame_cache_key(inst, *n, target), bytes.clone());
                out[i] = Some(FrameData { bytes, transfer_syntax: target.to_string() });
            } else {
                missing.push(i);
            }
        }
        if !missing.is_empty() {
            let wanted: Vec<u32> = missing.iter().map(|i| numbers[*i]).collect();
            let made = self.transcode_frames(inst, &wanted, target).await?;
            for (i, bytes) in missing.into_iter().zip(made) {
                self.output_cache.put(&frame_cache_key(inst, numbers[i], target), bytes.clone());
                if streaming(target) {
                    self.store_derived_frame(inst, numbers[i], bytes.clone()).await;
                }
                out[i] = Some(FrameData { bytes, transfer_syntax: target.to_string() });
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Decodes and encodes frames, on the blocking pool.
    pub(crate) async fn transcode_frames(
        &self,
        inst: &StoredInstance,
        numbers: &[u32],
        target: &str,
    ) -> Result<Vec<Bytes>, ArchiveError> {
        let header = self.image_header(inst).await?;
        let frames = self.frames(inst, numbers).await?;
        // Native frames come out little endian (big endian swapped, deflated inflated).
        let stored = served_stored_as(&inst.transfer_syntax).to_string();
        let target = target.to_string();
        tokio::task::spawn_blocking(move || {
            frames
                .iter()
                .map(|f| {
                    let t = transcode::transcode_frame(&header, &stored, &f.bytes, &target)
                        .map_err(|e| ArchiveError::NotAcceptable(format!("cannot give these frames as {target}: {e}")))?;
                    if let Some(p) = t.photometric
                        && !(p == "YBR_RCT" && header.photometric == yunying_pixels::Photometric::Rgb)
                    {
                        return Err(ArchiveError::NotAcceptable(format!(
                            "frames of this {:?} object would arrive as {p}, contradicting its metadata: ask for the \
                             stored transfer syntax or for the whole instance",
                            header.photometric
                        )));
                    }
                    Ok(Bytes::from(t.bytes))
                })
                .collect()
        })
        .await
        .map_err(|e| ArchiveError::Internal(e.to_string()))?
    }
}

/// HTJ2K lossless frames: the streaming copy's codestreams (RPCL, a valid
/// .201 codestream too) serve both syntaxes.
fn streaming(ts: &str) -> bool {
    ts == HTJ2K_LOSSLESS_RPCL || ts == HTJ2K_LOSSLESS
}

fn frame_cache_key(inst: &StoredInstance, frame: u32, ts: &str) -> String {
    format!("f/{}/{frame}/{ts}", inst.sha256)
}

impl Archive {
    /// Whether an object stored in `stored` can be given whole as `target`.
    pub fn can_transcode_object(stored: &str, target: &str) -> bool {
        stored == target
            || yunying_dicom::reencode::can_reencode(stored, target)
            || (yunying_pixels::decode::is_supported(stored) && transcode::can_encode(target))
    }

    /// A whole object in transfer syntax `target`, as a Part-10 file: native
    /// syntaxes re-encoded element by element, pixel data decoded and
    /// encoded again otherwise (Photometric Interpretation, Planar
    /// Configuration and the Lossy Image Compression attributes follow).
    pub async fn object_in(&self, inst: &StoredInstance, target: &str) -> Result<Bytes, ArchiveError> {
        let key = format!("o/{}/{target}", inst.sha256);
        if let Some(hit) = self.output_cache.get(&key) {
            return Ok(hit);
        }
        let dataset = self.load_dataset(&inst.blob_key).await.map_err(ArchiveError::Internal)?;
        let stored = inst.transfer_syntax.clone();
        let refuse = |m: String| ArchiveError::NotAcceptable(format!("cannot give {} as {target}: {m}", inst.sop_uid));
        let reencoded = yunying_dicom::reencode::can_reencode(&stored, target);
        let (pixel_data, edits) = if reencoded {
            (None, yunying_dicom::Edits::default())
        } else {
            if !Self::can_transcode_object(&stored, target) {
                return Err(refuse("no decoder for the stored syntax or no encoder for the target".into()));
            }
            let header = self.image_header(inst).await?;
            let count = header.number_of_frames.max(1);
            let numbers: Vec<u32> = (1..=count).collect();
            let frames = self.frames(inst, &numbers).await?;
            let from = served_stored_as(&stored).to_string();
            let to = target.to_string();
            let (frames, edits) = tokio::task::spawn_blocking(move || pixel_edits(&header, &from, &to, frames))
                .await
                .map_err(|e| ArchiveError::Internal(e.to_string()))?
                .map_err(|e| refuse(e.to_string()))?;
            (Some(frames), edits)
        };
        let opts = self.settings.parse.clone();
        let (sop_class, sop) = (inst.sop_class_uid.clone(), inst.sop_uid.clone());
        let to = target.to_string();
        let out = tokio::task::spawn_blocking(move || {
            let mut edits = edits;
            edits.pixel_data = pixel_data;
            let ds = yunying_dicom::rewrite_dataset(&dataset, &stored, &to, &edits, &opts)
                .map_err(|e| ArchiveError::NotAcceptable(format!("cannot give {sop} as {to}: {e}")))?;
            Ok::<_, ArchiveError>(Bytes::from(yunying_dicom::part10(&sop_class, &sop, &to, &ds, None)))
        })
        .await
        .map_err(|e| ArchiveError::Internal(e.to_string()))??;
        self.output_cache.put(&key, out.clone());
        Ok(out)
    }
}

impl Archive {
    /// The data set (no file meta) of an instance to send over DICOM in
    /// transfer syntax `to`, for a receiver that takes none it is stored in.
    pub async fn dataset_in(&self, item: &yunying_dimse::RetrieveItem, to: &str) -> Result<Bytes, String> {
        let (study, series, sop) = crate::keys::uids_of(&item.key).ok_or_else(|| format!("unknown object key {}", item.key))?;
        let found = self.index.stored_instances(&yunying_index::Scope::instance(study, series, sop)).await.map_err(|e| e.to_string())?;
        let inst = found
            .into_iter()
            .find(|i| i.blob_key == item.key)
            .ok_or_else(|| format!("{sop} is no longer the current version"))?;
        let file = self.object_in(&inst, to).await.map_err(|e| e.to_string())?;
        let offset = yunying_dicom::dataset_offset(&file).ok_or("the transcoded object has no data set")?;
        Ok(file.slice(offset..))
    }
}

/// Every frame transcoded, and the attributes that change with them.
fn pixel_edits(
    header: &yunying_pixels::ImageInfo,
    from: &str,
    to: &str,
    frames: Vec<FrameData>,
) -> Result<(yunying_dicom::PixelDataOut, yunying_dicom::Edits), yunying_pixels::PixelError> {
    use yunying_dicom::{Tag, VR};
    use yunying_dicom::{Edits, PixelDataOut};
    let mut photometric = None;
    let mut lossy = None;
    let mut out = Vec::with_capacity(frames.len());
    for f in &frames {
        let t = transcode::transcode_frame(header, from, &f.bytes, to)?;
        photometric = photometric.or(t.photometric);
        lossy = lossy.or(t.lossy);
        out.push(t.bytes);
    }
    let mut edits = Edits::default();
    let text = |s: &str| {
        let mut v = s.as_bytes().to_vec();
        if v.len() % 2 == 1 {
            v.push(b' ');
        }
        v
    };
    if let Some(p) = photometric {
        edits.set.push((Tag(0x0028, 0x0004), VR::CS, text(p)));
        // Decoded colour is interleaved.
        edits.set.push((Tag(0x0028, 0x0006), VR::US, 0u16.to_le_bytes().to_vec()));
    }
    if let Some((method, ratio)) = lossy {
        edits.set.push((Tag(0x0028, 0x2110), VR::CS, text("01")));
        edits.set.push((Tag(0x0028, 0x2112), VR::DS, text(&format!("{ratio:.2}"))));
        edits.set.push((Tag(0x0028, 0x2114), VR::CS, text(method)));
    }
    let pixel = if yunying_dicom::ts::is_native(to) {
        let vr = if header.bits_allocated > 8 { VR::OW } else { VR::OB };
        let mut bytes = out.concat();
        if bytes.len() % 2 == 1 {
            bytes.push(0);
        }
        PixelDataOut::Native { vr, bytes }
    } else {
        PixelDataOut::Encapsulated { frames: out }
    };
    Ok((pixel, edits))
}
