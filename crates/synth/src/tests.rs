//! Tests of the generator as a whole: the files parse back with Yunying's own
//! parser and say what the plan says; names survive every character set;
//! geometry and CT numbers are right; output is deterministic and lazy.

use std::collections::{HashMap, HashSet};
use std::io::Cursor;

use yunying_dicom::attrs::{self, InstanceAttrs};
use yunying_dicom::charset::CharacterSet;
use yunying_dicom::parse::{ParseOptions, ParsedObject, Value, parse_part10};
use yunying_dicom::{Tag, ts};

use super::*;
use crate::phantom::{RIGHT_LUNG, SPINOUS_PROCESS};

fn small(seed: u64, studies: usize) -> SynthOptions {
    SynthOptions {
        seed,
        studies,
        ct_slices: 8,
        rows: 64,
        columns: 64,
        end_date: "20261125".into(),
        ..SynthOptions::default()
    }
}

fn parse(bytes: &[u8]) -> ParsedObject {
    parse_part10(&mut Cursor::new(bytes), bytes.len() as u64, &ParseOptions::default()).expect("parses")
}

/// The character set of an object, GB18030 for undeclared text.
fn charset(obj: &ParsedObject) -> CharacterSet {
    attrs::charset_of(&obj.dataset, CharacterSet::fallback_from_label("gb18030").unwrap())
}

fn extract(obj: &ParsedObject) -> InstanceAttrs {
    attrs::extract(obj, &charset(obj)).expect("indexable")
}

fn text(obj: &ParsedObject, tag: Tag) -> Option<String> {
    obj.dataset.bytes(tag).map(|b| charset(obj).decode(b))
}

fn ds_values(obj: &ParsedObject, tag: Tag) -> Vec<f64> {
    let raw = obj.dataset.bytes(tag).unwrap_or_else(|| panic!("{tag:?} missing"));
    String::from_utf8_lossy(raw).trim_end().split('\\').map(|v| v.trim().parse::<f64>().unwrap()).collect()
}

fn uint(obj: &ParsedObject, g: u16, e: u16) -> u64 {
    obj.dataset.uint(Tag(g, e), false).unwrap()
}

/// The stored value of pixel (r, c).
fn stored(obj: &ParsedObject, bytes: &[u8], r: usize, c: usize) -> u16 {
    let cols = uint(obj, 0x0028, 0x0011) as usize;
    let at = match &obj.dataset.get(Tag(0x7FE0, 0x0010)).unwrap().value {
        Value::Bulk { offset, .. } => *offset as usize,
        other => panic!("pixel data not located: {other:?}"),
    };
    let i = at + 2 * (r * cols + c);
    u16::from_le_bytes([bytes[i], bytes[i + 1]])
}

/// The CT number at patient point (x, y) of an axial slice.
fn hu_at(obj: &ParsedObject, bytes: &[u8], x: f64, y: f64) -> f64 {
    let ipp = ds_values(obj, Tag(0x0020, 0x0032));
    let ps = ds_values(obj, Tag(0x0028, 0x0030));
    let c = ((x - ipp[0]) / ps[1]).round() as usize;
    let r = ((y - ipp[1]) / ps[0]).round() as usize;
    let slope = ds_values(obj, Tag(0x0028, 0x1053))[0];
    let intercept = ds_values(obj, Tag(0x0028, 0x1052))[0];
    stored(obj, bytes, r, c) as f64 * slope + intercept
}

#[test]
fn every_file_parses_and_says_what_the_plan_says() {
    let plans = plan(&small(1, 8));
    assert_eq!(plans.len(), 8);
    let mut sops = HashSet::new();
    let mut modalities = HashSet::new();
    for p in &plans {
        let mut per_series: HashMap<String, usize> = HashMap::new();
        for (sop, bytes) in p.instances() {
            let obj = parse(&bytes);
            assert_eq!(obj.meta.transfer_syntax, ts::EXPLICIT_VR_LE);
            let a = extract(&obj);
            assert_eq!(a.sop_instance_uid, sop);
            assert!(sops.insert(sop.clone()), "duplicate SOP Instance UID");
            yunying_util::uid::validate(&sop).unwrap();
            assert_eq!(a.study_instance_uid, p.study_uid);
            let series = p.series.iter().find(|s| s.series_uid == a.series_instance_uid).expect("planned series");
            *per_series.entry(series.series_uid.clone()).or_default() += 1;
            assert_eq!(a.patient_name.as_deref(), Some(p.patient_name.as_str()));
            assert_eq!(a.patient_id.as_deref(), Some(p.patient_id.as_str()));
            assert_eq!(a.issuer_of_patient_id, p.issuer_of_patient_id);
            assert_eq!(a.patient_birth_date.as_deref(), Some(p.patient_birth_date.as_str()));
            assert_eq!(a.patient_sex.as_deref(), Some(p.patient_sex.as_str()));
            assert_eq!(a.institution_name.as_deref(), Some(p.institution_name.as_str()));
            assert_eq!(a.accession_number.as_deref(), Some(p.accession_number.as_str()));
            assert_eq!(a.study_date.as_deref(), Some(p.study_date.as_str()));
            assert_eq!(a.study_description.as_deref(), Some(p.study_description.as_str()));
            assert_eq!(a.referring_physician_name.as_deref(), Some(p.referring_physician_name.as_str()));
            assert_eq!(a.admission_id, p.admission_id);
            assert_eq!(a.modality.as_deref(), Some(series.modality.as_str()));
            assert_eq!(a.series_description.as_deref(), Some(series.description.as_str()));
            assert_eq!(a.body_part_examined.as_deref(), Some(series.body_part.as_str()));
            assert_eq!(a.series_number, Some(series.series_number as i64));
            assert_eq!(a.rows, Some(series.rows as u32));
            assert_eq!(a.columns, Some(series.columns as u32));
            assert_eq!(a.bits_allocated, Some(16));
            assert!(a.station_name.is_some());
            assert_eq!(text(&obj, Tag(0x0008, 0x0070)).as_deref(), Some(MANUFACTURER));
            let pixel_len = obj.dataset.get(Tag(0x7FE0, 0x0010)).unwrap().value.byte_len();
            assert_eq!(pixel_len, series.rows as u64 * series.columns as u64 * 2);
            assert_eq!(uint(&obj, 0x0028, 0x0100), 16);
            assert_eq!(uint(&obj, 0x0028, 0x0101), 12);
            assert_eq!(uint(&obj, 0x0028, 0x0102), 11);
            assert_eq!(uint(&obj, 0x0028, 0x0103), 0);
            assert_eq!(uint(&obj, 0x0028, 0x0002), 1);
            modalities.insert(series.modality.clone());
        }
        for s in &p.series {
            assert_eq!(per_series.get(&s.series_uid), Some(&s.instance_count), "{}", s.description);
        }
        assert_eq!(per_series.values().sum::<usize>(), p.instance_count());
    }
    for m in ["CT", "DX", "CR", "MR"] {
        assert!(modalities.contains(m), "{m} missing from {modalities:?}");
    }
}

#[test]
fn chinese_names_decode_exactly_in_each_character_set() {
    for (choice, term) in
        [(CharsetChoice::Gb18030, "GB18030"), (CharsetChoice::Utf8, "ISO_IR 192"), (CharsetChoice::Gbk, "GBK")]
    {
        let opts = SynthOptions { charset: choice, studies: 40, ..small(5, 0) };
        for p in plan(&opts) {
            assert_eq!(p.specific_character_set, term);
            assert!(p.patient_name.contains('='), "{}", p.patient_name);
            let (_, bytes) = p.instances().next().unwrap();
            let obj = parse(&bytes);
            assert_eq!(obj.dataset.ascii(Tag(0x0008, 0x0005)).as_deref(), Some(term));
            let raw = obj.dataset.bytes(Tag(0x0010, 0x0010)).unwrap();
            let raw = raw.strip_suffix(b" ").unwrap_or(raw);
            if choice == CharsetChoice::Utf8 {
                assert_eq!(raw, p.patient_name.as_bytes());
            } else {
                assert_ne!(raw, p.patient_name.as_bytes(), "{term} must not be UTF-8");
            }
            let a = extract(&obj);
            assert_eq!(a.patient_name.as_deref(), Some(p.patient_name.as_str()), "{term}");
            assert_eq!(attrs::person_name_groups(a.patient_name.as_deref().unwrap())[1].contains('^'), true);
            assert_eq!(a.institution_name.as_deref(), Some(p.institution_name.as_str()), "{term}");
            assert_eq!(a.study_description.as_deref(), Some(p.study_description.as_str()), "{term}");
        }
    }
}

#[test]
fn hard_names_appear_and_survive() {
    // Over many studies the pool's hard names turn up: GBK-only characters
    // (two of them with a 0x5C second byte) and a GB18030 four-byte character.
    let plans = plan(&SynthOptions { studies: 400, ..small(9, 0) });
    let names: HashSet<&str> = plans.iter().map(|p| p.patient_name.as_str()).collect();
    assert!(names.iter().any(|n| n.contains('昞') || n.contains('琝')), "no 0x5C name");
    assert!(names.iter().any(|n| n.contains('𠮷')), "no four-byte name");
    for p in plans.iter().filter(|p| p.patient_name.contains(['昞', '琝', '𠮷', '喆', '堃', '珺'])).take(12) {
        assert!(p.specific_character_set != "GBK" || !p.patient_name.contains('𠮷'));
        let (_, bytes) = p.instances().next().unwrap();
        assert_eq!(extract(&parse(&bytes)).patient_name.as_deref(), Some(p.patient_name.as_str()));
    }
}

#[test]
fn ct_geometry_is_consistent() {
    let opts = SynthOptions { ct_slices: 12, ..small(2, 1) };
    let p = &plan(&opts)[0];
    assert_eq!(p.modality_summary, vec!["CT".to_string()]);
    assert_eq!(p.series.len(), 3, "localizer, soft tissue, lung");
    assert_eq!(p.series[1].instance_count, 12);
    assert_eq!(p.series[2].instance_count, 6);
    let mut frames_of_reference = HashSet::new();
    let mut by_series: HashMap<u32, Vec<ParsedObject>> = HashMap::new();
    for (_, bytes) in p.instances() {
        let obj = parse(&bytes);
        frames_of_reference.insert(obj.dataset.ascii(Tag(0x0020, 0x0052)).unwrap());
        let n = extract(&obj).series_number.unwrap() as u32;
        by_series.entry(n).or_default().push(obj);
    }
    assert_eq!(frames_of_reference.len(), 1, "one frame of reference for the study");
    let localizer = &by_series[&1][0];
    assert_eq!(ds_values(localizer, Tag(0x0020, 0x0037)), vec![1.0, 0.0, 0.0, 0.0, 0.0, -1.0]);
    assert!(localizer.dataset.ascii(Tag(0x0008, 0x0008)).is_some());
    for n in [2u32, 3] {
        let objs = &by_series[&n];
        let thickness = ds_values(&objs[0], Tag(0x0018, 0x0050))[0];
        let spacing = ds_values(&objs[0], Tag(0x0018, 0x0088))[0];
        assert_eq!(thickness, spacing);
        let mut prev: Option<f64> = None;
        for (i, obj) in objs.iter().enumerate() {
            let a = extract(obj);
            assert_eq!(a.instance_number, Some(i as i64 + 1));
            assert_eq!(obj.dataset.ascii(Tag(0x0008, 0x0016)).as_deref(), Some("1.2.840.10008.5.1.4.1.1.2"));
            let image_type = String::from_utf8_lossy(obj.dataset.bytes(Tag(0x0008, 0x0008)).unwrap()).to_string();
            assert_eq!(image_type.trim_end(), "ORIGINAL\\PRIMARY\\AXIAL");
            assert_eq!(ds_values(obj, Tag(0x0020, 0x0037)), vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
            assert_eq!(ds_values(obj, Tag(0x0018, 0x0050))[0], thickness);
            let ps = ds_values(obj, Tag(0x0028, 0x0030));
            assert_eq!(ps[0], ps[1]);
            assert!((ps[0] * 64.0 - 358.4).abs() < 1e-6, "{ps:?}");
            let ipp = ds_values(obj, Tag(0x0020, 0x0032));
            assert!((ipp[0] + 31.5 * ps[0]).abs() < 1e-4, "IPP x is the centre of the first column");
            assert_eq!(ds_values(obj, Tag(0x0020, 0x1041))[0], ipp[2], "SliceLocation = z");
            if let Some(z) = prev {
                assert!((z - ipp[2] - spacing).abs() < 1e-3, "z steps down by {spacing}: {z} -> {}", ipp[2]);
            }
            prev = Some(ipp[2]);
            assert_eq!(ds_values(obj, Tag(0x0028, 0x1052))[0], -1024.0);
            assert_eq!(ds_values(obj, Tag(0x0028, 0x1053))[0], 1.0);
            assert_eq!(obj.dataset.ascii(Tag(0x0028, 0x0004)).as_deref(), Some("MONOCHROME2"));
            assert!(ds_values(obj, Tag(0x0018, 0x0060))[0] > 0.0, "KVP");
            assert_eq!(ds_values(obj, Tag(0x0028, 0x1050)).len(), 1);
        }
    }
    // The lung series covers the same range with twice the spacing.
    let first = |n: u32| ds_values(&by_series[&n][0], Tag(0x0020, 0x0032))[2];
    let last = |n: u32| ds_values(by_series[&n].last().unwrap(), Tag(0x0020, 0x0032))[2];
    assert!(((first(2) + last(2)) - (first(3) + last(3))).abs() < 1e-3, "same centre");
}

#[test]
fn ct_numbers_are_plausible() {
    // 256 × 256: 1.4 mm pixels. The slice nearest z = 60 mm (upper chest).
    let opts = SynthOptions { ct_slices: 40, rows: 256, columns: 256, ..small(4, 1) };
    let p = &plan(&opts)[0];
    let s = p.phantom.scale;
    let soft = &p.series[1];
    let mut best: Option<(f64, ParsedObject, Vec<u8>)> = None;
    for (series, _, bytes) in p.instances_by_series() {
        if series.series_uid != soft.series_uid {
            continue;
        }
        let obj = parse(&bytes);
        let z = ds_values(&obj, Tag(0x0020, 0x0032))[2];
        if best.as_ref().is_none_or(|b| (b.0 - 60.0).abs() > (z - 60.0).abs()) {
            best = Some((z, obj, bytes));
        }
    }
    let (z, obj, bytes) = best.unwrap();
    assert!((z - 60.0).abs() < 10.0, "{z}");
    let lung = hu_at(&obj, &bytes, RIGHT_LUNG.0[0] * s, RIGHT_LUNG.0[1] * s);
    assert!((-950.0..=-700.0).contains(&lung), "lung {lung} HU");
    let bone = hu_at(&obj, &bytes, SPINOUS_PROCESS[0] * s, SPINOUS_PROCESS[1] * s);
    assert!((700.0..=1250.0).contains(&bone), "bone {bone} HU");
    let air = hu_at(&obj, &bytes, 0.0, -160.0);
    assert!((-1024.0..=-960.0).contains(&air), "air {air} HU");
    let fat = hu_at(&obj, &bytes, 0.0, 108.0 * s);
    assert!((-140.0..=-60.0).contains(&fat), "subcutaneous fat {fat} HU");
    // Outside the reconstruction circle: -1024 exactly.
    assert_eq!(stored(&obj, &bytes, 0, 0), 0);
}

#[test]
fn radiographs_show_lungs_darker_than_the_spine() {
    let plans = plan(&SynthOptions { rows: 128, columns: 128, ..small(3, 5) });
    let dx = plans.iter().find(|p| p.series[0].modality == "DX").unwrap();
    let cr = plans.iter().find(|p| p.series[0].modality == "CR").unwrap();
    for p in [dx, cr] {
        let (_, bytes) = p.instances().next().unwrap();
        let obj = parse(&bytes);
        let mono1 = obj.dataset.ascii(Tag(0x0028, 0x0004)).as_deref() == Some("MONOCHROME1");
        assert_eq!(mono1, p.series[0].modality == "CR");
        let (rows, cols) = (uint(&obj, 0x0028, 0x0010) as usize, uint(&obj, 0x0028, 0x0011) as usize);
        let s = ds_values(&obj, Tag(0x0018, 0x1164))[0];
        // Row at z = 40 mm; the image is centred on x = 0, z = -10.
        let r = ((rows as f64 - 1.0) / 2.0 - 50.0 / s).round() as usize;
        let col = |x: f64| ((cols as f64 - 1.0) / 2.0 + x / s).round() as usize;
        let scale = p.phantom.scale;
        let lung = stored(&obj, &bytes, r, col(-75.0 * scale)) as i32;
        let spine = stored(&obj, &bytes, r, col(0.0)) as i32;
        let air = stored(&obj, &bytes, r, 2) as i32;
        let (lung, spine, air) = if mono1 { (4095 - lung, 4095 - spine, 4095 - air) } else { (lung, spine, air) };
        assert!(air < lung && lung + 300 < spine, "air {air} lung {lung} spine {spine}");
    }
}

#[test]
fn output_is_deterministic() {
    let opts = small(11, 6);
    let a = plan(&opts);
    let b = plan(&opts);
    for (pa, pb) in a.iter().zip(&b) {
        assert_eq!(pa.study_uid, pb.study_uid);
        assert!(pa.instances().eq(pb.instances()), "same bytes");
    }
    // A shorter plan is a prefix of a longer one.
    let c = plan(&SynthOptions { studies: 3, ..opts.clone() });
    assert_eq!(c.iter().map(|p| &p.study_uid).collect::<Vec<_>>(), a[..3].iter().map(|p| &p.study_uid).collect::<Vec<_>>());
    // Another seed, another date or another size: other UIDs.
    let d = plan(&SynthOptions { seed: 12, ..opts.clone() });
    let e = plan(&SynthOptions { end_date: "20261124".into(), ..opts.clone() });
    let f = plan(&SynthOptions { rows: 66, ..opts.clone() });
    for other in [&d, &e, &f] {
        assert!(other.iter().zip(&a).all(|(x, y)| x.study_uid != y.study_uid));
    }
    let x = ct_series_study(5, 3, &region_institutions()[0]);
    let y = ct_series_study(5, 3, &region_institutions()[0]);
    assert!(x.instances().eq(y.instances()));
}

#[test]
fn iteration_is_lazy() {
    let p = &plan(&SynthOptions { ct_slices: 30, ..small(6, 1) })[0];
    assert!(p.instance_count() > 40);
    build::RENDERED.with(|c| c.set(0));
    let mut it = p.instances();
    assert_eq!(build::RENDERED.with(|c| c.get()), 0, "nothing made before the first next()");
    let _ = it.next().unwrap();
    assert_eq!(build::RENDERED.with(|c| c.get()), 1);
    let _ = it.nth(2).unwrap();
    assert_eq!(build::RENDERED.with(|c| c.get()), 4);
}

#[test]
fn studies_are_spread_and_identities_overlap_on_purpose() {
    let plans = plan(&SynthOptions { studies: 16, ..small(7, 0) });
    let codes: HashSet<&str> = plans.iter().map(|p| p.institution_code.as_str()).collect();
    assert_eq!(codes.len(), 16, "one study per institution");
    // The same local ID string for different people at different centres.
    let p123: Vec<&StudyPlan> = plans.iter().filter(|p| p.patient_id == "P000123").collect();
    assert!(p123.len() >= 2, "P000123 at several centres");
    assert!(p123.windows(2).all(|w| w[0].institution_code != w[1].institution_code));
    assert!(p123.windows(2).any(|w| (w[0].patient_name.as_str(), w[0].patient_birth_date.as_str()) != (w[1].patient_name.as_str(), w[1].patient_birth_date.as_str())));
    // The same person (name, birth date, sex) at two institutions, with two IDs.
    let mut people: HashMap<(&str, &str, &str), Vec<&StudyPlan>> = HashMap::new();
    for p in &plans {
        people.entry((&p.patient_name, &p.patient_birth_date, &p.patient_sex)).or_default().push(p);
    }
    assert!(people.values().any(|v| v.len() >= 2 && v[0].institution_code != v[1].institution_code && v[0].patient_id != v[1].patient_id));
    // Hospitals send an issuer, health centres do not.
    assert_eq!(plans[0].issuer_of_patient_id.as_deref(), Some("SZRMYY"));
    assert!(plans[0].patient_id.starts_with("SZRMYY") && plans[0].patient_id.len() == 14);
    assert!(plans.iter().any(|p| p.issuer_of_patient_id.is_none()));
    // Inpatients have an admission ID, outpatients not.
    assert!(plans.iter().any(|p| p.admission_id.is_some()));
    assert!(plans.iter().any(|p| p.admission_id.is_none()));
    // Dates within three years of the end date; ages agree with birth dates.
    let end = yunying_util::time::days_from_civil(2026, 11, 25);
    for p in &plans {
        let d = &p.study_date;
        let days = yunying_util::time::days_from_civil(d[0..4].parse().unwrap(), d[4..6].parse().unwrap(), d[6..8].parse().unwrap());
        assert!((end - 3 * 365..=end).contains(&days), "{d}");
        let b = &p.patient_birth_date;
        let born = yunying_util::time::days_from_civil(b[0..4].parse().unwrap(), b[4..6].parse().unwrap(), b[6..8].parse().unwrap());
        assert_eq!(p.patient_age, people::age_string(born, days));
        assert!(["M", "F"].contains(&p.patient_sex.as_str()));
        assert!(yunying_util::time::is_valid_da(&p.patient_birth_date));
        assert!(p.accession_number.len() <= 16 && p.study_id.len() <= 16);
    }
    let parts: HashSet<&str> = plans.iter().flat_map(|p| p.series.iter().map(|s| s.body_part.as_str())).collect();
    assert_eq!(parts, HashSet::from(["CHEST", "HEAD", "ABDOMEN"]));
}

#[test]
fn the_default_demo_stays_well_under_200_mb() {
    let plans = plan(&SynthOptions { studies: 16, ct_slices: 40, ..SynthOptions::default() });
    let pixel_bytes: u64 = plans
        .iter()
        .flat_map(|p| &p.series)
        .map(|s| s.instance_count as u64 * s.rows as u64 * s.columns as u64 * 2)
        .sum();
    let files: usize = plans.iter().map(|p| p.instance_count()).sum();
    // Headers are about 2 kB a file.
    let total = pixel_bytes + files as u64 * 4096;
    eprintln!("16 studies, ct_slices 40: {files} files, about {} MB", total / 1_000_000);
    assert!(total < 160_000_000, "{total}");
}

#[test]
fn benchmark_series_shape() {
    let inst = &region_institutions()[0];
    let p = ct_series_study(1, 10, inst);
    assert_eq!(p.series.len(), 1);
    assert_eq!(p.instance_count(), 10);
    assert_eq!((p.series[0].rows, p.series[0].columns), (512, 512));
    assert_eq!(p.institution_code, "SZRMYY");
    let (_, bytes) = p.instances().next().unwrap();
    assert!(bytes.len() > 512 * 512 * 2);
    let a = extract(&parse(&bytes));
    assert_eq!(a.institution_name.as_deref(), Some("嵊州市人民医院"));
}

#[test]
fn writes_a_tree_of_files() {
    let dir = std::env::temp_dir().join(format!("yunying-synth-test-{}", std::process::id()));
    let plans = plan(&small(8, 2));
    let n = write_to_dir(&plans, &dir).unwrap();
    assert_eq!(n, plans.iter().map(|p| p.instance_count()).sum::<usize>());
    let (sop, bytes) = plans[1].instances().next().unwrap();
    let path = dir.join(&plans[1].study_uid).join(&plans[1].series[0].series_uid).join(format!("{sop}.dcm"));
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Needs DCMTK's dcmdump (`apt-get install dcmtk`); skips when absent.
#[test]
#[ignore]
fn dcmtk_reads_a_generated_study() {
    let dcmdump = std::path::Path::new("/usr/bin/dcmdump");
    if !dcmdump.exists() {
        eprintln!("skipped: /usr/bin/dcmdump is not installed");
        return;
    }
    let dir = std::env::temp_dir().join(format!("yunying-synth-dcmtk-{}", std::process::id()));
    let plans = plan(&SynthOptions { studies: 5, rows: 128, columns: 128, ..small(21, 0) });
    write_to_dir(&plans, &dir).unwrap();
    for p in &plans {
        for s in &p.series {
            let series_dir = dir.join(&p.study_uid).join(&s.series_uid);
            let file = std::fs::read_dir(&series_dir).unwrap().next().unwrap().unwrap().path();
            let out = std::process::Command::new(dcmdump).arg("-E").arg("+Ep").arg(&file).output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{}: {stderr}", file.display());
            assert!(!stderr.contains("E:") && !stderr.contains("W:"), "{}: {stderr}", file.display());
            assert!(stdout.contains("(0010,0010)") && stdout.contains(MANUFACTURER), "{stdout}");
            assert!(stdout.contains(&p.study_uid));
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Release-mode timing of the benchmark series:
/// `cargo test -p yunying-synth --release -- --ignored --nocapture benchmark_series_timing`.
#[test]
#[ignore]
fn benchmark_series_timing() {
    let slices = std::env::var("SYNTH_SLICES").ok().and_then(|s| s.parse().ok()).unwrap_or(800);
    let start = std::time::Instant::now();
    let p = ct_series_study(42, slices, &region_institutions()[0]);
    let mut bytes = 0usize;
    let mut files = 0usize;
    for (_, b) in p.instances() {
        bytes += b.len();
        files += 1;
    }
    let elapsed = start.elapsed();
    eprintln!(
        "{files} slices, {:.1} MB, in {:.2} s ({:.0} MB/s)",
        bytes as f64 / 1e6,
        elapsed.as_secs_f64(),
        bytes as f64 / 1e6 / elapsed.as_secs_f64()
    );
    assert_eq!(files, slices);
}
