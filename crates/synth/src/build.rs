//! Part-10 files: each instance of a planned series is written on demand
//! (attributes of the patient, study, series, equipment and image modules of
//! CT, DX, CR and MR, then its pixels) with `yunying_dicom::write`, in
//! explicit VR little endian.

use yunying_dicom::write::{DataSetBuilder, ObjectBuilder};
use yunying_dicom::{Tag, VR, ts};

use crate::phantom::{Phantom, Tissue};
use crate::plan::{Axial, SeriesKind, SeriesPlan, StudyPlan, tm};
use crate::render::{self, Beam, Grid};
use crate::rng::{derive, uid_from_seed};

/// CT Image Storage.
pub(crate) const CT_IMAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
/// Digital X-Ray Image Storage - For Presentation.
pub(crate) const DX_IMAGE: &str = "1.2.840.10008.5.1.4.1.1.1.1";
/// Computed Radiography Image Storage.
pub(crate) const CR_IMAGE: &str = "1.2.840.10008.5.1.4.1.1.1";
/// MR Image Storage.
pub(crate) const MR_IMAGE: &str = "1.2.840.10008.5.1.4.1.1.4";

/// Manufacturer (0008,0070) of every generated instance.
pub const MANUFACTURER: &str = "YUNYING-SYNTH";

#[cfg(test)]
thread_local! {
    /// Instances rendered on this thread (tests check that iteration is lazy).
    pub(crate) static RENDERED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A DS value: at most 6 decimals, trailing zeros trimmed, at most 16 characters.
pub(crate) fn ds(v: f64) -> String {
    for decimals in (0..=6).rev() {
        let s = format!("{v:.decimals$}");
        let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
        let s = if s == "-0" { "0".to_string() } else { s };
        if s.len() <= 16 {
            return s;
        }
    }
    format!("{v:.0}")
}

fn ds_list(vs: &[f64]) -> String {
    vs.iter().map(|v| ds(*v)).collect::<Vec<_>>().join("\\")
}

/// Makes the instances of one series; holds what all its instances share.
pub(crate) struct SeriesRenderer<'a> {
    study: &'a StudyPlan,
    series: &'a SeriesPlan,
    phantom: Phantom,
}

impl<'a> SeriesRenderer<'a> {
    pub(crate) fn new(study: &'a StudyPlan, series: &'a SeriesPlan) -> Self {
        let on_table = !matches!(series.kind, SeriesKind::Radiograph { .. });
        SeriesRenderer { study, series, phantom: Phantom::new(&study.phantom, on_table) }
    }

    /// The SOP Instance UID and Part-10 bytes of instance `i` (0-based).
    pub(crate) fn instance(&self, i: usize) -> (String, Vec<u8>) {
        #[cfg(test)]
        RENDERED.with(|c| c.set(c.get() + 1));
        let se = self.series;
        let sop = uid_from_seed(derive(se.seed, 1_000_000 + i as u64));
        let sop_class = match &se.kind {
            SeriesKind::CtAxial { .. } | SeriesKind::CtLocalizer { .. } => CT_IMAGE,
            SeriesKind::Radiograph { cr: true, .. } => CR_IMAGE,
            SeriesKind::Radiograph { cr: false, .. } => DX_IMAGE,
            SeriesKind::MrAxial { .. } => MR_IMAGE,
        };
        let mut b = ObjectBuilder::new(sop_class, &sop, ts::EXPLICIT_VR_LE);
        let pixel_seed = derive(se.seed, 2_000_000 + i as u64);
        let pixels = match &se.kind {
            SeriesKind::CtAxial { geom, kernel, noise } => self.ct_axial(&mut b, i, geom, kernel, *noise, pixel_seed),
            SeriesKind::CtLocalizer { beams, centre_z, length } => {
                self.ct_localizer(&mut b, i, beams[i], *centre_z, *length, pixel_seed)
            }
            SeriesKind::Radiograph { beams, cr, centre_z, spacing } => {
                self.radiograph(&mut b, i, beams[i], *cr, *centre_z, *spacing, pixel_seed)
            }
            SeriesKind::MrAxial { geom, t2 } => self.mr_axial(&mut b, i, geom, *t2, pixel_seed),
        };
        let pixel_len = pixels.len();
        b.pixel_data_native(pixels, VR::OW);
        let mut out = Vec::with_capacity(pixel_len + 8192);
        b.write_into(&mut out);
        (sop, out)
    }

    /// Patient, study, series, equipment and general image attributes.
    fn common(&self, b: &mut ObjectBuilder, i: usize, photometric: &str, content_s: f64) {
        let st = self.study;
        let se = self.series;
        let series_s = st.study_seconds as f64 + se.offset_s as f64;
        b.charset(&st.specific_character_set);
        let d = &st.study_date;
        b.str(Tag(0x0008, 0x0012), VR::DA, d);
        b.str(Tag(0x0008, 0x0013), VR::TM, &tm(content_s.floor() + 1.0));
        b.str(Tag(0x0008, 0x0020), VR::DA, d);
        b.str(Tag(0x0008, 0x0021), VR::DA, d);
        b.str(Tag(0x0008, 0x0022), VR::DA, d);
        b.str(Tag(0x0008, 0x0023), VR::DA, d);
        b.str(Tag(0x0008, 0x0030), VR::TM, &st.study_time);
        b.str(Tag(0x0008, 0x0031), VR::TM, &tm(series_s));
        b.str(Tag(0x0008, 0x0032), VR::TM, &tm(content_s));
        b.str(Tag(0x0008, 0x0033), VR::TM, &tm(content_s));
        b.str(Tag(0x0008, 0x0050), VR::SH, &st.accession_number);
        b.str(Tag(0x0008, 0x0060), VR::CS, &se.modality);
        b.str(Tag(0x0008, 0x0070), VR::LO, MANUFACTURER);
        b.str(Tag(0x0008, 0x0080), VR::LO, &st.institution_name);
        b.str(Tag(0x0008, 0x0090), VR::PN, &st.referring_physician_name);
        b.str(Tag(0x0008, 0x0201), VR::SH, "+0800");
        b.str(Tag(0x0008, 0x1010), VR::SH, &st.station_name);
        b.str(Tag(0x0008, 0x1030), VR::LO, &st.study_description);
        b.str(Tag(0x0008, 0x103E), VR::LO, &se.description);
        b.str(Tag(0x0008, 0x1040), VR::LO, "放射科");
        let model = match se.modality.as_str() {
            "CT" => "Phantom CT 64",
            "MR" => "Phantom MR 1.5T",
            "CR" => "Phantom CR",
            _ => "Phantom DR",
        };
        b.str(Tag(0x0008, 0x1090), VR::LO, model);
        b.str(Tag(0x0010, 0x0010), VR::PN, &st.patient_name);
        b.str(Tag(0x0010, 0x0020), VR::LO, &st.patient_id);
        if let Some(issuer) = &st.issuer_of_patient_id {
            b.str(Tag(0x0010, 0x0021), VR::LO, issuer);
        }
        b.str(Tag(0x0010, 0x0030), VR::DA, &st.patient_birth_date);
        b.str(Tag(0x0010, 0x0040), VR::CS, &st.patient_sex);
        b.str(Tag(0x0010, 0x1010), VR::AS, &st.patient_age);
        b.str(Tag(0x0010, 0x1030), VR::DS, &st.weight_kg.to_string());
        b.str(Tag(0x0018, 0x0015), VR::CS, &se.body_part);
        b.str(Tag(0x0018, 0x1000), VR::LO, &format!("SYN{:05}", st.station_name.len() * 1237 % 100_000));
        b.str(Tag(0x0018, 0x1020), VR::LO, concat!("yunying-synth ", env!("CARGO_PKG_VERSION")));
        b.str(Tag(0x0018, 0x1030), VR::LO, protocol(&se.body_part, &se.modality));
        b.str(Tag(0x0020, 0x000D), VR::UI, &st.study_uid);
        b.str(Tag(0x0020, 0x000E), VR::UI, &se.series_uid);
        b.str(Tag(0x0020, 0x0010), VR::SH, &st.study_id);
        b.str(Tag(0x0020, 0x0011), VR::IS, &se.series_number.to_string());
        b.str(Tag(0x0020, 0x0012), VR::IS, "1");
        b.str(Tag(0x0020, 0x0013), VR::IS, &(i + 1).to_string());
        b.u16(Tag(0x0028, 0x0002), 1);
        b.str(Tag(0x0028, 0x0004), VR::CS, photometric);
        b.u16(Tag(0x0028, 0x0010), se.rows);
        b.u16(Tag(0x0028, 0x0011), se.columns);
        b.u16(Tag(0x0028, 0x0100), 16);
        b.u16(Tag(0x0028, 0x0101), 12);
        b.u16(Tag(0x0028, 0x0102), 11);
        b.u16(Tag(0x0028, 0x0103), 0);
        b.str(Tag(0x0028, 0x1050), VR::DS, &ds(se.window.0));
        b.str(Tag(0x0028, 0x1051), VR::DS, &ds(se.window.1));
        if let Some(adm) = &st.admission_id {
            b.str(Tag(0x0038, 0x0010), VR::LO, adm);
        }
    }

    fn series_start(&self) -> f64 {
        self.study.study_seconds as f64 + self.series.offset_s as f64
    }

    fn ct_equipment(&self, b: &mut ObjectBuilder, ma: u32) {
        let st = self.study;
        b.str(Tag(0x0018, 0x0060), VR::DS, "120");
        if st.contrast {
            b.str(Tag(0x0018, 0x0010), VR::LO, "碘海醇注射液");
            b.str(Tag(0x0018, 0x1040), VR::LO, "IV");
        }
        b.str(Tag(0x0018, 0x0090), VR::DS, "500");
        b.str(Tag(0x0018, 0x1110), VR::DS, "1040");
        b.str(Tag(0x0018, 0x1111), VR::DS, "570");
        b.str(Tag(0x0018, 0x1120), VR::DS, "0");
        b.str(Tag(0x0018, 0x1130), VR::DS, "150");
        b.str(Tag(0x0018, 0x1140), VR::CS, "CW");
        b.str(Tag(0x0018, 0x1150), VR::IS, "600");
        b.str(Tag(0x0018, 0x1151), VR::IS, &ma.to_string());
        b.str(Tag(0x0018, 0x1152), VR::IS, &(ma * 6 / 10).to_string());
        b.str(Tag(0x0018, 0x1160), VR::SH, if self.series.body_part == "HEAD" { "HEAD" } else { "BODY" });
        b.str(Tag(0x0018, 0x1190), VR::DS, "1.2");
        b.str(Tag(0x0018, 0x5100), VR::CS, "HFS");
        b.str(Tag(0x0020, 0x0052), VR::UI, &st.frame_of_reference_uid);
        b.str(Tag(0x0020, 0x1040), VR::LO, "");
    }

    fn axial_plane(&self, b: &mut ObjectBuilder, i: usize, geom: &Axial) -> (Grid, f64) {
        let se = self.series;
        let ps = geom.pixel_spacing;
        let z = geom.z_first - i as f64 * geom.spacing;
        let g = Grid {
            rows: se.rows as usize,
            cols: se.columns as usize,
            u0: -(se.columns as f64 - 1.0) / 2.0 * ps,
            v0: -(se.rows as f64 - 1.0) / 2.0 * ps,
            du: ps,
            dv: ps,
        };
        b.str(Tag(0x0018, 0x0050), VR::DS, &ds(geom.thickness));
        b.str(Tag(0x0018, 0x0088), VR::DS, &ds(geom.spacing));
        b.str(Tag(0x0020, 0x0032), VR::DS, &ds_list(&[g.u0, g.v0, z]));
        b.str(Tag(0x0020, 0x0037), VR::DS, "1\\0\\0\\0\\1\\0");
        b.str(Tag(0x0020, 0x1041), VR::DS, &ds(z));
        b.str(Tag(0x0028, 0x0030), VR::DS, &ds_list(&[ps, ps]));
        (g, z)
    }

    fn ct_axial(&self, b: &mut ObjectBuilder, i: usize, geom: &Axial, kernel: &str, noise: f64, seed: u64) -> Vec<u8> {
        let content_s = self.series_start() + 0.35 * i as f64;
        self.common(b, i, "MONOCHROME2", content_s);
        b.str(Tag(0x0008, 0x0008), VR::CS, "ORIGINAL\\PRIMARY\\AXIAL");
        self.ct_equipment(b, if self.series.body_part == "HEAD" { 300 } else { 220 });
        b.str(Tag(0x0018, 0x1100), VR::DS, &ds(geom.pixel_spacing * self.series.rows.max(self.series.columns) as f64));
        b.str(Tag(0x0018, 0x1210), VR::SH, kernel);
        let (g, z) = self.axial_plane(b, i, geom);
        b.str(Tag(0x0028, 0x1052), VR::DS, "-1024");
        b.str(Tag(0x0028, 0x1053), VR::DS, "1");
        b.str(Tag(0x0028, 0x1054), VR::LO, "HU");
        let lut = Tissue::table(|t| t.hu(self.study.contrast));
        let mut hu = vec![0i16; g.rows * g.cols];
        render::paint_section(&self.phantom.section(z), &lut, -1000, &g, &mut hu);
        let fov = 0.5 * geom.pixel_spacing * g.rows.max(g.cols) as f64;
        render::ct_words(&hu, &g, noise, seed, fov)
    }

    fn ct_localizer(&self, b: &mut ObjectBuilder, i: usize, beam: Beam, centre_z: f64, length: f64, seed: u64) -> Vec<u8> {
        let se = self.series;
        let content_s = self.series_start() + 8.0 * i as f64;
        self.common(b, i, "MONOCHROME2", content_s);
        b.str(Tag(0x0008, 0x0008), VR::CS, "ORIGINAL\\PRIMARY\\LOCALIZER");
        self.ct_equipment(b, 30);
        let (rows, cols) = (se.rows as usize, se.columns as usize);
        let width = if self.series.body_part == "HEAD" { 300.0 } else { 500.0 };
        let s = (width / cols as f64).max((length + 80.0) / rows as f64);
        let u0 = -(cols as f64 - 1.0) / 2.0 * s;
        let z_top = centre_z + (rows as f64 - 1.0) / 2.0 * s;
        let (ipp, iop) = match beam {
            Beam::Frontal => ([u0, 0.0, z_top], "1\\0\\0\\0\\0\\-1"),
            Beam::Lateral => ([0.0, u0, z_top], "0\\1\\0\\0\\0\\-1"),
        };
        b.str(Tag(0x0020, 0x0032), VR::DS, &ds_list(&ipp));
        b.str(Tag(0x0020, 0x0037), VR::DS, iop);
        b.str(Tag(0x0028, 0x0030), VR::DS, &ds_list(&[s, s]));
        b.str(Tag(0x0028, 0x1052), VR::DS, "0");
        b.str(Tag(0x0028, 0x1053), VR::DS, "1");
        b.str(Tag(0x0028, 0x1054), VR::LO, "US");
        let p = self.projection(beam, rows, cols, s, u0, z_top);
        render::radiograph_words(&p, cols, seed, false)
    }

    /// Line integrals on a `rows × cols` grid of spacing `s`, computed on a
    /// grid of at most 512 × 512 and resampled (radiographs are smooth).
    fn projection(&self, beam: Beam, rows: usize, cols: usize, s: f64, u0: f64, z_top: f64) -> Vec<f32> {
        let f = rows.max(cols).div_ceil(512).max(1);
        let (lr, lc) = (rows.div_ceil(f), cols.div_ceil(f));
        let (dv, du) = (s * rows as f64 / lr as f64, s * cols as f64 / lc as f64);
        // Same outer edges as the full grid.
        let g = Grid { rows: lr, cols: lc, u0: u0 - s / 2.0 + du / 2.0, v0: 0.0, du, dv };
        let mu = Tissue::table(|t| t.mu(self.study.contrast));
        let p = render::project(&self.phantom, &mu, beam, &g, z_top + s / 2.0 - dv / 2.0);
        render::resample(&p, lr, lc, rows, cols)
    }

    #[allow(clippy::too_many_arguments)]
    fn radiograph(&self, b: &mut ObjectBuilder, i: usize, beam: Beam, cr: bool, centre_z: f64, s: f64, seed: u64) -> Vec<u8> {
        let se = self.series;
        let content_s = self.series_start() + 45.0 * i as f64;
        self.common(b, i, if cr { "MONOCHROME1" } else { "MONOCHROME2" }, content_s);
        b.str(Tag(0x0008, 0x0008), VR::CS, "ORIGINAL\\PRIMARY");
        let (code, meaning) = match se.body_part.as_str() {
            "HEAD" => ("69536005", "Head"),
            "ABDOMEN" => ("818981001", "Abdomen"),
            _ => ("43799004", "Chest"),
        };
        let mut region = DataSetBuilder::new();
        region.str(Tag(0x0008, 0x0100), VR::SH, code);
        region.str(Tag(0x0008, 0x0102), VR::SH, "SCT");
        region.str(Tag(0x0008, 0x0104), VR::LO, meaning);
        b.dataset.sequence(Tag(0x0008, 0x2218), vec![region]);
        b.str(Tag(0x0018, 0x0060), VR::DS, if beam == Beam::Lateral { "125" } else { "120" });
        b.str(Tag(0x0018, 0x1110), VR::DS, "1800");
        b.str(Tag(0x0018, 0x1111), VR::DS, "1650");
        b.str(Tag(0x0018, 0x1150), VR::IS, if beam == Beam::Lateral { "16" } else { "8" });
        b.str(Tag(0x0018, 0x1151), VR::IS, "250");
        b.str(Tag(0x0018, 0x1164), VR::DS, &ds_list(&[s, s]));
        b.str(Tag(0x0018, 0x5101), VR::CS, if beam == Beam::Lateral { "LL" } else { "PA" });
        b.str(Tag(0x0020, 0x0020), VR::CS, if beam == Beam::Lateral { "P\\F" } else { "L\\F" });
        b.str(Tag(0x0020, 0x0062), VR::CS, "U");
        b.str(Tag(0x0028, 0x0030), VR::DS, &ds_list(&[s, s]));
        b.str(Tag(0x0028, 0x0301), VR::CS, "NO");
        b.str(Tag(0x0028, 0x1040), VR::CS, "LOG");
        b.bytes(Tag(0x0028, 0x1041), VR::SS, (if cr { 1i16 } else { -1i16 }).to_le_bytes().to_vec());
        b.str(Tag(0x0028, 0x1052), VR::DS, "0");
        b.str(Tag(0x0028, 0x1053), VR::DS, "1");
        b.str(Tag(0x0028, 0x1054), VR::LO, "US");
        b.str(Tag(0x0028, 0x2110), VR::CS, "00");
        if cr {
            b.str(Tag(0x0018, 0x1004), VR::LO, "IP-35x43");
        } else {
            b.str(Tag(0x0008, 0x0068), VR::CS, "FOR PRESENTATION");
            b.str(Tag(0x0018, 0x7004), VR::CS, "SCINTILLATOR");
            b.dataset.sequence(Tag(0x0040, 0x0555), Vec::new());
        }
        let (rows, cols) = (se.rows as usize, se.columns as usize);
        let u0 = -(cols as f64 - 1.0) / 2.0 * s;
        let z_top = centre_z + (rows as f64 - 1.0) / 2.0 * s;
        let p = self.projection(beam, rows, cols, s, u0, z_top);
        render::radiograph_words(&p, cols, seed, cr)
    }

    fn mr_axial(&self, b: &mut ObjectBuilder, i: usize, geom: &Axial, t2: bool, seed: u64) -> Vec<u8> {
        let content_s = self.series_start() + 6.0 * i as f64;
        self.common(b, i, "MONOCHROME2", content_s);
        b.str(Tag(0x0008, 0x0008), VR::CS, "ORIGINAL\\PRIMARY\\M\\ND");
        b.str(Tag(0x0018, 0x0020), VR::CS, "SE");
        b.str(Tag(0x0018, 0x0021), VR::CS, if t2 { "SK\\SP" } else { "SP" });
        b.str(Tag(0x0018, 0x0022), VR::CS, "");
        b.str(Tag(0x0018, 0x0023), VR::CS, "2D");
        b.str(Tag(0x0018, 0x0024), VR::SH, if t2 { "*tse2d1_16" } else { "*se2d1" });
        b.str(Tag(0x0018, 0x0080), VR::DS, if t2 { "4000" } else { "500" });
        b.str(Tag(0x0018, 0x0081), VR::DS, if t2 { "100" } else { "12" });
        b.str(Tag(0x0018, 0x0083), VR::DS, "2");
        b.str(Tag(0x0018, 0x0084), VR::DS, "63.87");
        b.str(Tag(0x0018, 0x0085), VR::SH, "1H");
        b.str(Tag(0x0018, 0x0086), VR::IS, "1");
        b.str(Tag(0x0018, 0x0087), VR::DS, "1.5");
        b.str(Tag(0x0018, 0x0091), VR::IS, if t2 { "16" } else { "1" });
        b.str(Tag(0x0018, 0x1250), VR::SH, "Head");
        b.str(Tag(0x0018, 0x1314), VR::DS, "90");
        b.str(Tag(0x0018, 0x5100), VR::CS, "HFS");
        b.str(Tag(0x0020, 0x0052), VR::UI, &self.study.frame_of_reference_uid);
        b.str(Tag(0x0020, 0x1040), VR::LO, "");
        let (g, z) = self.axial_plane(b, i, geom);
        let lut = Tissue::table(|t| t.mr(t2));
        let mut signal = vec![0i16; g.rows * g.cols];
        render::paint_section(&self.phantom.section(z), &lut, 0, &g, &mut signal);
        render::mr_words(&signal, g.cols, 10.0, seed)
    }
}

fn protocol(body_part: &str, modality: &str) -> &'static str {
    match (modality, body_part) {
        ("CT", "HEAD") => "Head Routine",
        ("CT", "ABDOMEN") => "Abdomen Portal Venous",
        ("CT", _) => "Chest Routine",
        ("MR", _) => "Head Routine 1.5T",
        _ => "Chest PA/LAT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ds_values_are_short() {
        assert_eq!(ds(0.7), "0.7");
        assert_eq!(ds(-178.85), "-178.85");
        assert_eq!(ds(-0.0), "0");
        assert_eq!(ds(1234567.123456789), "1234567.123457");
        assert!(ds(-123456789.123456).len() <= 16);
        assert_eq!(ds_list(&[40.0, 400.0]), "40\\400");
    }
}
