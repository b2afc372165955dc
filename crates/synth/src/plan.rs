//! Planning: turns [`SynthOptions`] into [`StudyPlan`]s (patients, institutions,
//! dates, identifiers, series and their geometry) without generating a single
//! pixel. Everything is drawn from seeded streams, so a plan, and the files
//! made from it, depend only on the options.

use std::collections::HashMap;

use crate::institution::{Institution, local_patient_id, region_institutions};
use crate::people::{self, Person, Sex};
use crate::phantom::{Anatomy, PhantomParams};
use crate::render::Beam;
use crate::rng::{Rng, derive, label, uid_from_seed};

/// Which Specific Character Set (0008,0005) the studies are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CharsetChoice {
    /// Study by study in turn: `GB18030`, `ISO_IR 192` (UTF-8), `GBK`.
    #[default]
    Mixed,
    /// Every study in `GB18030`.
    Gb18030,
    /// Every study in `ISO_IR 192` (UTF-8).
    Utf8,
    /// Every study in `GBK`.
    Gbk,
}

impl CharsetChoice {
    /// The defined term written in (0008,0005) for the study at `study_index`.
    pub fn term_for(self, study_index: usize) -> &'static str {
        const MIXED: [&str; 3] = ["GB18030", "ISO_IR 192", "GBK"];
        match self {
            CharsetChoice::Mixed => MIXED[study_index % 3],
            CharsetChoice::Gb18030 => "GB18030",
            CharsetChoice::Utf8 => "ISO_IR 192",
            CharsetChoice::Gbk => "GBK",
        }
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    /// Seed of every random choice; the same options give byte-identical files.
    pub seed: u64,
    /// How many studies.
    pub studies: usize,
    /// Slices of the main axial series of a chest CT (abdomen CT has 3/4 of
    /// it, head CT and the lung-kernel series 1/2). Default 120.
    pub ct_slices: usize,
    /// Rows of a CT image (default 512); radiographs have twice as many, MR half.
    pub rows: u16,
    /// Columns of a CT image (default 512); scaled like `rows` for other modalities.
    pub columns: u16,
    /// Studies are spread over these, in turn (default: the 16 of the region).
    pub institutions: Vec<Institution>,
    /// Character set of the text (default: mixed).
    pub charset: CharsetChoice,
    /// Study dates fall in the three years before this DICOM date (`YYYYMMDD`).
    /// Default: today in China Standard Time. Pin it for byte-identical files
    /// on another day (the date also enters the UIDs, so a different day never
    /// gives different bytes under the same UID).
    pub end_date: String,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            seed: 20_240_601,
            studies: 16,
            ct_slices: 120,
            rows: 512,
            columns: 512,
            institutions: region_institutions(),
            charset: CharsetChoice::Mixed,
            end_date: yunying_util::time::today_da_cst(),
        }
    }
}

/// One planned study: who, where, when, and its series.
#[derive(Debug, Clone)]
pub struct StudyPlan {
    /// Study Instance UID (0020,000D).
    pub study_uid: String,
    /// Patient ID (0010,0020), in the institution's local style.
    pub patient_id: String,
    /// Issuer of Patient ID (0010,0021): the institution code, sent only by the hospitals.
    pub issuer_of_patient_id: Option<String>,
    /// Patient's Name (0010,0010), `Pinyin^Given=汉字^名`.
    pub patient_name: String,
    /// Patient's Birth Date (0010,0030).
    pub patient_birth_date: String,
    /// Patient's Sex (0010,0040), `M` or `F`.
    pub patient_sex: String,
    /// Patient's Age (0010,1010) on the study date, `058Y`.
    pub patient_age: String,
    /// Code of the institution that performed the study.
    pub institution_code: String,
    /// Institution Name (0008,0080), in Chinese.
    pub institution_name: String,
    /// Specific Character Set (0008,0005) of every instance.
    pub specific_character_set: String,
    /// Accession Number (0008,0050).
    pub accession_number: String,
    /// Study ID (0020,0010).
    pub study_id: String,
    /// Study Date (0008,0020).
    pub study_date: String,
    /// Study Time (0008,0030).
    pub study_time: String,
    /// Study Description (0008,1030), in Chinese.
    pub study_description: String,
    /// Referring Physician's Name (0008,0090).
    pub referring_physician_name: String,
    /// Admission ID (0038,0010), present for inpatients only.
    pub admission_id: Option<String>,
    /// Modalities in Study: the distinct modalities of the series, in order.
    pub modality_summary: Vec<String>,
    /// The series, in acquisition order.
    pub series: Vec<SeriesPlan>,
    pub(crate) seed: u64,
    pub(crate) phantom: PhantomParams,
    pub(crate) contrast: bool,
    pub(crate) weight_kg: u32,
    pub(crate) station_name: String,
    pub(crate) study_seconds: u32,
    pub(crate) frame_of_reference_uid: String,
}

/// One planned series.
#[derive(Debug, Clone)]
pub struct SeriesPlan {
    /// Series Instance UID (0020,000E).
    pub series_uid: String,
    /// Modality (0008,0060): `CT`, `DX`, `CR` or `MR`.
    pub modality: String,
    /// Series Description (0008,103E).
    pub description: String,
    /// Number of instances (one image each).
    pub instance_count: usize,
    /// Series Number (0020,0011).
    pub series_number: u32,
    /// Body Part Examined (0018,0015): `CHEST`, `HEAD` or `ABDOMEN`.
    pub body_part: String,
    /// Rows (0028,0010) of every image.
    pub rows: u16,
    /// Columns (0028,0011) of every image.
    pub columns: u16,
    pub(crate) kind: SeriesKind,
    pub(crate) seed: u64,
    /// Seconds after the study start.
    pub(crate) offset_s: u32,
    pub(crate) window: (f64, f64),
}

/// How a series' images are made.
#[derive(Debug, Clone)]
pub(crate) enum SeriesKind {
    /// Axial CT slices.
    CtAxial { geom: Axial, kernel: &'static str, noise: f64 },
    /// CT localizer (scanogram), one image per beam, covering the scan range.
    CtLocalizer { beams: Vec<Beam>, centre_z: f64, length: f64 },
    /// Projection radiographs, one per beam; `cr` for computed radiography.
    Radiograph { beams: Vec<Beam>, cr: bool, centre_z: f64, spacing: f64 },
    /// Axial MR slices, T1- or T2-weighted.
    MrAxial { geom: Axial, t2: bool },
}

/// Geometry of an axial stack: slice `i` (of `count`) is at `z_first - i·spacing`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Axial {
    pub count: usize,
    pub thickness: f64,
    pub spacing: f64,
    pub z_first: f64,
    pub pixel_spacing: f64,
}

impl Axial {
    fn centred(centre_z: f64, n: usize, thickness: f64, spacing: f64, fov: f64, rows: u16, cols: u16) -> Axial {
        Axial {
            count: n,
            thickness,
            spacing,
            z_first: round3(centre_z + (n as f64 - 1.0) / 2.0 * spacing),
            pixel_spacing: fov / rows.max(cols) as f64,
        }
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// What kind of examination a study is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StudyKind {
    CtChest,
    CtHead,
    CtAbdomen,
    DxChest,
    CrChest,
    MrHead,
    /// One thin-slice chest CT series only (the benchmark).
    CtSeries(usize),
}

/// The mix of examinations, in turn: plain-film chest is the commonest
/// examination of a county hospital, then CT.
const CYCLE: [StudyKind; 8] = [
    StudyKind::CtChest,
    StudyKind::DxChest,
    StudyKind::MrHead,
    StudyKind::CtHead,
    StudyKind::CrChest,
    StudyKind::DxChest,
    StudyKind::CtAbdomen,
    StudyKind::DxChest,
];

/// Standard reconstruction thicknesses; a stack of `n` slices gets the
/// thinnest that covers at least 60% of the wanted range.
fn thickness_for(n: usize, coverage: f64) -> f64 {
    const T: [f64; 9] = [0.625, 1.0, 1.25, 2.0, 2.5, 3.0, 5.0, 7.5, 10.0];
    T.into_iter().find(|t| n as f64 * t >= 0.6 * coverage).unwrap_or(10.0)
}

/// State shared by the studies of one plan: who has been registered where.
struct Planner {
    seed: u64,
    rows: u16,
    cols: u16,
    ct_slices: usize,
    charset: CharsetChoice,
    institutions: Vec<Institution>,
    end_days: i64,
    /// The person of each study, with the index of the study that created them.
    persons: Vec<(usize, Person)>,
    /// (person key, institution code) → local Patient ID.
    registry: HashMap<(usize, String), String>,
    /// Patients registered so far per institution.
    counters: HashMap<String, u64>,
}

fn days_of_da(da: &str) -> Option<i64> {
    if !yunying_util::time::is_valid_da(da) {
        return None;
    }
    Some(yunying_util::time::days_from_civil(da[0..4].parse().ok()?, da[4..6].parse().ok()?, da[6..8].parse().ok()?))
}

pub(crate) fn da(days: i64) -> String {
    let (y, m, d) = yunying_util::time::civil_from_days(days);
    format!("{y:04}{m:02}{d:02}")
}

/// DICOM TM of a number of seconds after midnight (clamped to the day).
pub(crate) fn tm(seconds: f64) -> String {
    let s = seconds.clamp(0.0, 86_399.999_999);
    let whole = s.floor() as u32;
    let micros = ((s - whole as f64) * 1e6).round().min(999_999.0) as u32;
    let base = format!("{:02}{:02}{:02}", whole / 3600, whole / 60 % 60, whole % 60);
    if micros == 0 { base } else { format!("{base}.{micros:06}") }
}

impl Planner {
    fn new(opts: &SynthOptions) -> Planner {
        let institutions = if opts.institutions.is_empty() { region_institutions() } else { opts.institutions.clone() };
        let end_date = if days_of_da(&opts.end_date).is_some() {
            opts.end_date.clone()
        } else {
            yunying_util::time::today_da_cst()
        };
        let rows = opts.rows.max(16);
        let cols = opts.columns.max(16);
        let ct_slices = opts.ct_slices.max(1);
        let codes: Vec<&str> = institutions.iter().map(|i| i.code.as_str()).collect();
        // Everything that changes the bytes enters the seed (and so the UIDs).
        let fingerprint =
            label(&format!("{ct_slices}/{rows}/{cols}/{:?}/{}/{end_date}", opts.charset, codes.join(",")));
        Planner {
            seed: derive(opts.seed, fingerprint),
            rows,
            cols,
            ct_slices,
            charset: opts.charset,
            institutions,
            end_days: days_of_da(&end_date).unwrap_or(0),
            persons: Vec::new(),
            registry: HashMap::new(),
            counters: HashMap::new(),
        }
    }

    fn study(&mut self, index: usize, kind: StudyKind) -> StudyPlan {
        let seed = derive(self.seed, index as u64);
        let mut rng = Rng::new(derive(seed, 7));
        let inst = self.institutions[index % self.institutions.len()].clone();
        let term = self.charset.term_for(index);
        // Up to the day before the end date, so that no study lies in the future.
        let mut study_days = self.end_days - 1 - rng.below(3 * 365 - 1) as i64;

        // The patient: every fifth study is an adult seen three studies earlier
        // at another institution (same person, that institution's own ID).
        let reuse = (index % 5 == 4 && index >= 3)
            .then(|| self.persons[index - 3].clone())
            .filter(|(_, p)| study_days - p.birth_days > 18 * 365 && people::encodable(&p.name, term));
        let (key, person) = match reuse {
            Some(kp) => kp,
            None => {
                let maternal = inst.code == "SZFYBJY";
                let child = maternal && rng.chance(0.5) && !matches!(kind, StudyKind::CtAbdomen | StudyKind::CtSeries(_));
                let female = maternal && !child;
                let p = people::person(&mut rng, study_days, child, female, term == "GBK");
                (index, p)
            }
        };
        study_days = study_days.max(person.birth_days + 30);
        self.persons.push((key, person.clone()));
        let reg_key = (key, inst.code.clone());
        let patient_id = match self.registry.get(&reg_key) {
            Some(id) => id.clone(),
            None => {
                let n = self.counters.entry(inst.code.clone()).or_insert(0);
                let id = local_patient_id(&inst.code, *n, label(&inst.code));
                *n += 1;
                self.registry.insert(reg_key, id.clone());
                id
            }
        };
        let age_years = (study_days - person.birth_days) / 365;
        let inpatient = rng.chance(0.3);
        let hour = if inpatient { rng.range(7, 21) } else { rng.range(8, 16) };
        let study_seconds = (hour * 3600 + rng.range(0, 59) * 60 + rng.range(0, 59)) as u32;
        let (y, m, d) = yunying_util::time::civil_from_days(study_days);
        let short: String = inst.code.chars().take(4).collect();
        let accession_number = format!("{short}{:02}{m:02}{d:02}{:04}", y % 100, rng.range(1, 9999));
        let weight_kg = if age_years < 15 {
            (10 + 3 * age_years) as u32
        } else if person.sex == Sex::M {
            rng.range(55, 88) as u32
        } else {
            rng.range(45, 75) as u32
        };
        let scale = if age_years < 15 { (0.6 + 0.025 * age_years as f64).min(0.95) } else { rng.uniform(0.9, 1.06) };
        let anatomy = match kind {
            StudyKind::CtHead | StudyKind::MrHead => Anatomy::Head,
            _ => Anatomy::Torso,
        };
        let contrast = match kind {
            StudyKind::CtAbdomen => true,
            StudyKind::CtChest => rng.chance(0.4),
            StudyKind::CtSeries(_) => true,
            _ => false,
        };
        let two_views = kind == StudyKind::DxChest && rng.chance(0.6);
        let (description, station_suffix) = match kind {
            StudyKind::CtChest if contrast => ("胸部CT增强", "CT01"),
            StudyKind::CtChest => ("胸部CT平扫", "CT01"),
            StudyKind::CtSeries(_) => ("胸部CT增强(薄层)", "CT01"),
            StudyKind::CtHead => ("头颅CT平扫", "CT01"),
            StudyKind::CtAbdomen => ("上腹部CT增强", "CT01"),
            StudyKind::DxChest if two_views => ("胸部正侧位", "DR01"),
            StudyKind::DxChest => ("胸部正位", "DR01"),
            StudyKind::CrChest => ("胸部正位", "CR01"),
            StudyKind::MrHead => ("头颅MR平扫", "MR01"),
        };
        let station_name: String = format!("{}_{station_suffix}", inst.code).chars().take(16).collect();
        let mut study = StudyPlan {
            study_uid: uid_from_seed(derive(seed, 1)),
            issuer_of_patient_id: (crate::institution::id_style(&inst.code)
                == crate::institution::IdStyle::CodeDigits)
                .then(|| inst.code.clone()),
            patient_id,
            patient_name: person.name.clone(),
            patient_birth_date: da(person.birth_days),
            patient_sex: person.sex.code().to_string(),
            patient_age: people::age_string(person.birth_days, study_days),
            institution_code: inst.code.clone(),
            institution_name: inst.name_zh.clone(),
            specific_character_set: term.to_string(),
            accession_number,
            study_id: rng.range(10_000, 99_999).to_string(),
            study_date: da(study_days),
            study_time: tm(study_seconds as f64),
            study_description: description.to_string(),
            referring_physician_name: people::doctor(&mut rng),
            admission_id: inpatient.then(|| format!("ZY{:08}", rng.range(1_000_000, 99_999_999))),
            modality_summary: Vec::new(),
            series: Vec::new(),
            seed,
            phantom: PhantomParams { anatomy, seed: derive(seed, 3), female: person.sex == Sex::F && age_years >= 14, scale },
            contrast,
            weight_kg,
            station_name,
            study_seconds,
            frame_of_reference_uid: uid_from_seed(derive(seed, 2)),
        };
        self.add_series(&mut study, kind, two_views, &mut rng);
        for s in &study.series {
            if !study.modality_summary.contains(&s.modality) {
                study.modality_summary.push(s.modality.clone());
            }
        }
        study
    }

    fn add_series(&self, study: &mut StudyPlan, kind: StudyKind, two_views: bool, rng: &mut Rng) {
        let (rows, cols) = (self.rows, self.cols);
        let n = self.ct_slices;
        let mut list: Vec<(String, &'static str, SeriesKind, (u16, u16), u32, (f64, f64))> = Vec::new();
        match kind {
            StudyKind::CtChest | StudyKind::CtSeries(_) => {
                let n = if let StudyKind::CtSeries(k) = kind { k.max(1) } else { n };
                let t = thickness_for(n, 320.0);
                let (rows, cols) = if matches!(kind, StudyKind::CtSeries(_)) { (512, 512) } else { (rows, cols) };
                let soft = Axial::centred(5.0, n, t, t, 358.4, rows, cols);
                if let StudyKind::CtChest = kind {
                    let beams = if rng.chance(0.5) { vec![Beam::Frontal, Beam::Lateral] } else { vec![Beam::Frontal] };
                    let length = n as f64 * t;
                    list.push((
                        "定位像".into(),
                        "CHEST",
                        SeriesKind::CtLocalizer { beams, centre_z: 5.0, length },
                        (rows, cols),
                        30,
                        (2048.0, 4096.0),
                    ));
                }
                list.push((
                    format!("胸部 软组织 {}mm", fmt_mm(t)),
                    "CHEST",
                    SeriesKind::CtAxial { geom: soft, kernel: "STANDARD", noise: 12.0 },
                    (rows, cols),
                    75,
                    (40.0, 400.0),
                ));
                if let StudyKind::CtChest = kind {
                    let n2 = (n / 2).max(1);
                    let lung = Axial::centred(5.0, n2, 2.0 * t, 2.0 * t, 358.4, rows, cols);
                    list.push((
                        format!("胸部 肺窗 {}mm", fmt_mm(2.0 * t)),
                        "CHEST",
                        SeriesKind::CtAxial { geom: lung, kernel: "LUNG", noise: 35.0 },
                        (rows, cols),
                        110,
                        (-600.0, 1500.0),
                    ));
                }
            }
            StudyKind::CtHead => {
                let n = (n / 2).max(1);
                let t = thickness_for(n, 160.0);
                let geom = Axial::centred(15.0, n, t, t, 250.0, rows, cols);
                list.push((
                    "定位像".into(),
                    "HEAD",
                    SeriesKind::CtLocalizer { beams: vec![Beam::Lateral], centre_z: 15.0, length: n as f64 * t },
                    (rows, cols),
                    20,
                    (2048.0, 4096.0),
                ));
                list.push((
                    format!("头颅 脑窗 {}mm", fmt_mm(t)),
                    "HEAD",
                    SeriesKind::CtAxial { geom, kernel: "BRAIN", noise: 4.0 },
                    (rows, cols),
                    60,
                    (40.0, 80.0),
                ));
            }
            StudyKind::CtAbdomen => {
                let n = (n * 3 / 4).max(1);
                let t = thickness_for(n, 300.0);
                let geom = Axial::centred(-230.0, n, t, t, 380.0, rows, cols);
                list.push((
                    "定位像".into(),
                    "ABDOMEN",
                    SeriesKind::CtLocalizer { beams: vec![Beam::Frontal], centre_z: -230.0, length: n as f64 * t },
                    (rows, cols),
                    30,
                    (2048.0, 4096.0),
                ));
                list.push((
                    format!("腹部 门脉期 {}mm", fmt_mm(t)),
                    "ABDOMEN",
                    SeriesKind::CtAxial { geom, kernel: "STANDARD", noise: 14.0 },
                    (rows, cols),
                    95,
                    (50.0, 350.0),
                ));
            }
            StudyKind::DxChest | StudyKind::CrChest => {
                let cr = kind == StudyKind::CrChest;
                let r = rows.saturating_mul(2);
                let c = if cr { even((cols as f64 * 2.0 * 0.84) as u16) } else { cols.saturating_mul(2) };
                let beams = if two_views { vec![Beam::Frontal, Beam::Lateral] } else { vec![Beam::Frontal] };
                let desc = if beams.len() == 2 { "胸部 正侧位" } else { "胸部 后前位" };
                let spacing = 430.0 / r.max(c) as f64;
                list.push((
                    desc.into(),
                    "CHEST",
                    SeriesKind::Radiograph { beams, cr, centre_z: -10.0, spacing },
                    (r, c),
                    20,
                    (2048.0, 4096.0),
                ));
            }
            StudyKind::MrHead => {
                let (r, c) = (even(rows / 2).max(32), even(cols / 2).max(32));
                for (i, t2) in [false, true].into_iter().enumerate() {
                    let geom = Axial::centred(20.0, 20, 5.0, 6.0, 230.0, r, c);
                    let (desc, window) = if t2 { ("T2WI 横断位", (900.0, 1800.0)) } else { ("T1WI 横断位", (500.0, 1000.0)) };
                    list.push((desc.into(), "HEAD", SeriesKind::MrAxial { geom, t2 }, (r, c), 120 + 300 * i as u32, window));
                }
            }
        }
        for (k, (description, body_part, kind, (r, c), offset_s, window)) in list.into_iter().enumerate() {
            let seed = derive(study.seed, 100 + k as u64);
            let (modality, count) = match &kind {
                SeriesKind::CtAxial { geom, .. } => ("CT", geom.count),
                SeriesKind::CtLocalizer { beams, .. } => ("CT", beams.len()),
                SeriesKind::Radiograph { beams, cr, .. } => (if *cr { "CR" } else { "DX" }, beams.len()),
                SeriesKind::MrAxial { geom, .. } => ("MR", geom.count),
            };
            study.series.push(SeriesPlan {
                series_uid: uid_from_seed(derive(seed, 1)),
                modality: modality.into(),
                description,
                instance_count: count,
                series_number: k as u32 + 1,
                body_part: body_part.into(),
                rows: r,
                columns: c,
                kind,
                seed,
                offset_s,
                window,
            });
        }
    }

}

fn even(v: u16) -> u16 {
    v & !1
}

fn fmt_mm(t: f64) -> String {
    let s = format!("{t:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Plans the studies of `opts`. Cheap: no pixel is generated.
pub fn plan(opts: &SynthOptions) -> Vec<StudyPlan> {
    let mut p = Planner::new(opts);
    (0..opts.studies).map(|i| p.study(i, CYCLE[i % CYCLE.len()])).collect()
}

/// One study made of a single axial CT series of `slices` images, 512 × 512,
/// 16-bit (the benchmark series: 800 slices are about 420 MB), at `institution`,
/// dated today. The seed fixes everything else.
pub fn ct_series_study(seed: u64, slices: usize, institution: &Institution) -> StudyPlan {
    let opts = SynthOptions {
        seed,
        studies: 1,
        ct_slices: slices.max(1),
        institutions: vec![institution.clone()],
        charset: CharsetChoice::Gb18030,
        ..SynthOptions::default()
    };
    let mut p = Planner::new(&opts);
    p.seed = derive(p.seed, label("ct_series_study"));
    p.study(0, StudyKind::CtSeries(slices.max(1)))
}
