//! The benchmark's data, generated once into a cache directory and reused:
//!
//! - `ct<N>/`: one study with one N-slice 512×512 CT series
//!   (`yunying_synth::ct_series_study`), one Part-10 file per slice;
//! - `qido<N>/`: N small studies of one instance each (64×64 and smaller
//!   images from `yunying_synth::plan`), each with its own patient: Patient ID
//!   `YB000123`, Patient Name from a fixed pool (`Zhang^Xiaoming=张^小明`).
//!
//! A `manifest.json` is written last; a directory whose manifest is missing,
//! or whose files do not have the recorded sizes, is made again.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};

/// Seed of the CT series (any fixed value: the same files every time).
const CT_SEED: u64 = 20_250_800;
/// Seed of the small studies.
const QIDO_SEED: u64 = 20_251_000;
/// Pinned study-date window of the small studies (byte-identical files any day).
const QIDO_END_DATE: &str = "20250630";
/// Bumped when the layout of the generated data changes.
const FORMAT: u64 = 1;

/// One Part-10 file of a data set.
#[derive(Debug, Clone)]
pub struct FileEntry {
    pub sop_uid: String,
    pub path: PathBuf,
    pub size: u64,
}

/// The CT series.
#[derive(Debug, Clone)]
pub struct CtSeries {
    pub study_uid: String,
    pub series_uid: String,
    pub rows: u32,
    pub columns: u32,
    pub files: Vec<FileEntry>,
}

impl CtSeries {
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// The small studies for the catalog queries.
#[derive(Debug, Clone)]
pub struct SmallStudies {
    pub files: Vec<FileEntry>,
    /// (Patient ID, Patient Name) of each study, in file order.
    pub patients: Vec<(String, String)>,
}

/// Surnames of the name pool: (pinyin, hanzi). Only one starts with "Zhang".
#[rustfmt::skip]
const SURNAMES: [(&str, &str); 50] = [
    ("Wang", "王"), ("Li", "李"), ("Zhang", "张"), ("Liu", "刘"), ("Chen", "陈"),
    ("Yang", "杨"), ("Huang", "黄"), ("Zhao", "赵"), ("Wu", "吴"), ("Zhou", "周"),
    ("Xu", "徐"), ("Sun", "孙"), ("Ma", "马"), ("Zhu", "朱"), ("Hu", "胡"),
    ("Guo", "郭"), ("He", "何"), ("Gao", "高"), ("Lin", "林"), ("Luo", "罗"),
    ("Zheng", "郑"), ("Liang", "梁"), ("Xie", "谢"), ("Song", "宋"), ("Tang", "唐"),
    ("Han", "韩"), ("Feng", "冯"), ("Deng", "邓"), ("Cao", "曹"), ("Peng", "彭"),
    ("Zeng", "曾"), ("Xiao", "肖"), ("Tian", "田"), ("Dong", "董"), ("Yuan", "袁"),
    ("Pan", "潘"), ("Yu", "于"), ("Jiang", "蒋"), ("Cai", "蔡"), ("Du", "杜"),
    ("Ye", "叶"), ("Cheng", "程"), ("Wei", "魏"), ("Su", "苏"), ("Lyu", "吕"),
    ("Ding", "丁"), ("Ren", "任"), ("Shen", "沈"), ("Yao", "姚"), ("Lu", "卢"),
];

/// Syllables of given names: (pinyin, hanzi).
#[rustfmt::skip]
const GIVEN: [(&str, &str); 40] = [
    ("wei", "伟"), ("fang", "芳"), ("na", "娜"), ("min", "敏"), ("jing", "静"),
    ("li", "丽"), ("qiang", "强"), ("lei", "磊"), ("jun", "军"), ("yang", "洋"),
    ("yong", "勇"), ("yan", "艳"), ("jie", "杰"), ("tao", "涛"), ("ming", "明"),
    ("chao", "超"), ("xiu", "秀"), ("xia", "霞"), ("ping", "平"), ("gang", "刚"),
    ("gui", "桂"), ("hua", "华"), ("hong", "红"), ("ying", "英"), ("hui", "慧"),
    ("jian", "建"), ("guo", "国"), ("lan", "兰"), ("mei", "梅"), ("bo", "波"),
    ("bin", "斌"), ("yu", "宇"), ("hao", "浩"), ("kai", "凯"), ("xin", "欣"),
    ("chen", "晨"), ("rui", "瑞"), ("tian", "天"), ("shan", "山"), ("long", "龙"),
];

/// Patient ID of small study `i`.
pub fn patient_id(i: usize) -> String {
    format!("YB{i:06}")
}

/// Patient Name of small study `i`: `Zhang^Weifang=张^伟芳`.
pub fn patient_name(i: usize) -> String {
    let (s_py, s_hz) = SURNAMES[i % SURNAMES.len()];
    let (g1_py, g1_hz) = GIVEN[(i / SURNAMES.len()) % GIVEN.len()];
    let (g2_py, g2_hz) = GIVEN[(i / (SURNAMES.len() * GIVEN.len())) % GIVEN.len()];
    let mut given = format!("{g1_py}{g2_py}");
    given[..1].make_ascii_uppercase();
    format!("{s_py}^{given}={s_hz}^{g1_hz}{g2_hz}")
}

fn read_manifest(dir: &Path, kind: &str, count: usize) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join("manifest.json")).ok()?;
    let m: Value = serde_json::from_str(&text).ok()?;
    if m["format"].as_u64()? != FORMAT || m["kind"].as_str()? != kind || m["count"].as_u64()? != count as u64 {
        return None;
    }
    let files = m["files"].as_array()?;
    if files.len() != count {
        return None;
    }
    for f in files {
        let size = std::fs::metadata(dir.join(f["name"].as_str()?)).ok()?.len();
        if size != f["size"].as_u64()? {
            return None;
        }
    }
    Some(m)
}

fn write_manifest(dir: &Path, m: &Value) -> std::io::Result<()> {
    let tmp = dir.join("manifest.json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(serde_json::to_string(m).expect("json").as_bytes())?;
    f.sync_all()?;
    std::fs::rename(tmp, dir.join("manifest.json"))
}

fn entries(dir: &Path, m: &Value) -> Vec<FileEntry> {
    m["files"]
        .as_array()
        .map(|files| {
            files
                .iter()
                .map(|f| FileEntry {
                    sop_uid: f["sop"].as_str().unwrap_or_default().to_string(),
                    path: dir.join(f["name"].as_str().unwrap_or_default()),
                    size: f["size"].as_u64().unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The N-slice CT series, generated into `cache/ct<N>` unless already there.
pub fn ct_series(cache: &Path, slices: usize) -> std::io::Result<CtSeries> {
    let dir = cache.join(format!("ct{slices}"));
    let m = match read_manifest(&dir, "ct", slices) {
        Some(m) => {
            eprintln!("data: reusing {} ({slices} files)", dir.display());
            m
        }
        None => {
            eprintln!("data: generating the {slices}-slice CT series into {} (once) ...", dir.display());
            let started = Instant::now();
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)?;
            let institution = yunying_synth::region_institutions().remove(0);
            let plan = yunying_synth::ct_series_study(CT_SEED, slices, &institution);
            let series = &plan.series[0];
            let mut files = Vec::with_capacity(slices);
            for (i, (sop, bytes)) in plan.instances().enumerate() {
                let name = format!("{i:05}.dcm");
                std::fs::write(dir.join(&name), &bytes)?;
                files.push(json!({"name": name, "sop": sop, "study": plan.study_uid, "size": bytes.len()}));
                if (i + 1) % 100 == 0 {
                    eprintln!("data:   {} / {slices}", i + 1);
                }
            }
            let m = json!({
                "format": FORMAT, "kind": "ct", "count": slices,
                "study": plan.study_uid, "series": series.series_uid,
                "rows": series.rows, "columns": series.columns, "files": files,
            });
            write_manifest(&dir, &m)?;
            eprintln!("data: generated in {:.1} s", started.elapsed().as_secs_f64());
            m
        }
    };
    Ok(CtSeries {
        study_uid: m["study"].as_str().unwrap_or_default().to_string(),
        series_uid: m["series"].as_str().unwrap_or_default().to_string(),
        rows: m["rows"].as_u64().unwrap_or(512) as u32,
        columns: m["columns"].as_u64().unwrap_or(512) as u32,
        files: entries(&dir, &m),
    })
}

/// N small studies, generated into `cache/qido<N>` unless already there.
pub fn small_studies(cache: &Path, count: usize) -> std::io::Result<SmallStudies> {
    let dir = cache.join(format!("qido{count}"));
    let m = match read_manifest(&dir, "qido", count) {
        Some(m) => {
            eprintln!("data: reusing {} ({count} files)", dir.display());
            m
        }
        None => {
            eprintln!("data: generating {count} one-instance studies into {} (once) ...", dir.display());
            let started = Instant::now();
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)?;
            let opts = yunying_synth::SynthOptions {
                seed: QIDO_SEED,
                studies: count,
                ct_slices: 1,
                rows: 64,
                columns: 64,
                end_date: QIDO_END_DATE.into(),
                ..Default::default()
            };
            let plans = yunying_synth::plan(&opts);
            let mut files = Vec::with_capacity(count);
            for (i, mut p) in plans.into_iter().enumerate() {
                p.series.truncate(1);
                p.series[0].instance_count = 1;
                p.patient_id = patient_id(i);
                p.patient_name = patient_name(i);
                let (sop, bytes) = p.instances().next().expect("one instance");
                let name = format!("{i:06}.dcm");
                std::fs::write(dir.join(&name), &bytes)?;
                files.push(json!({
                    "name": name, "sop": sop, "study": p.study_uid, "size": bytes.len(),
                    "patient_id": p.patient_id, "patient_name": p.patient_name,
                }));
                if (i + 1) % 2000 == 0 {
                    eprintln!("data:   {} / {count}", i + 1);
                }
            }
            let m = json!({"format": FORMAT, "kind": "qido", "count": count, "files": files});
            write_manifest(&dir, &m)?;
            eprintln!("data: generated in {:.1} s", started.elapsed().as_secs_f64());
            m
        }
    };
    let patients = m["files"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .map(|f| {
                    (
                        f["patient_id"].as_str().unwrap_or_default().to_string(),
                        f["patient_name"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(SmallStudies { files: entries(&dir, &m), patients })
}

/// Study Date (0008,0020) of each small study, read from its file (the
/// manifest does not record it), in file order; "" when absent.
pub fn study_dates(small: &SmallStudies) -> std::io::Result<Vec<String>> {
    let opts = yunying_dicom::ParseOptions::default();
    small
        .files
        .iter()
        .map(|f| {
            let mut file = std::io::BufReader::new(std::fs::File::open(&f.path)?);
            let parsed = yunying_dicom::parse_part10(&mut file, f.size, &opts)
                .map_err(|e| std::io::Error::other(format!("{}: {e}", f.path.display())))?;
            Ok(parsed.dataset.ascii(yunying_dicom::tags::STUDY_DATE).unwrap_or_default())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(patient_name(2), "Zhang^Weiwei=张^伟伟");
        assert_eq!(patient_name(52), "Zhang^Fangwei=张^芳伟");
        let zhang = SURNAMES.iter().filter(|(p, _)| p.to_ascii_lowercase().starts_with("zhang")).count();
        assert_eq!(zhang, 1);
        let distinct: std::collections::HashSet<_> = (0..10_000).map(patient_name).collect();
        assert_eq!(distinct.len(), 10_000);
    }
}
