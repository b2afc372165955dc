//! Realistic synthetic studies for Yunying's demo data, tests and benchmarks.
//!
//! Studies are planned cheaply ([`plan`], [`ct_series_study`]) and their
//! Part-10 files are made one at a time on demand ([`StudyPlan::instances`]),
//! so memory stays bounded by one file however large the study.
//!
//! What is in them:
//! - patients with Chinese names (`Zhang^San=张^三`) in GB18030, UTF-8
//!   (`ISO_IR 192`) or GBK, including names that are hard for character sets
//!   (GBK characters outside GB2312, GBK characters whose second byte is `\`,
//!   a character that needs GB18030 four-byte codes); local Patient IDs in
//!   each institution's style, with the same `P000123` at several township
//!   health centres for different people, and adults seen again at another
//!   institution under that institution's own ID;
//! - the 16 member institutions of the region ([`region_institutions`]),
//!   study dates within the last three years, accession numbers, admission
//!   IDs for inpatients, Chinese study and series descriptions;
//! - images of a 3D phantom with real geometry: CT chest (localizer,
//!   soft-tissue and lung-kernel series), CT head, contrast CT abdomen, DX and
//!   CR chest radiographs (projections of the same phantom) and MR head (T1 and
//!   T2). CT values are Hounsfield units stored as `HU + 1024` in 12 bits.
//!
//! Everything comes from seeded SplitMix64 streams and UIDs are computed from
//! them: the same options give the same bytes, which makes imports resumable.
//!
//! Modules: `rng` (randomness, seeded UIDs), `institution`, `people`,
//! `phantom` (anatomy), `render` (pixels), `plan` (options and plans),
//! `build` (Part-10 files). To write a demo set to disk:
//! `cargo run -p yunying-synth --release --example synth_write -- <dir> [studies] [ct_slices] [seed]`.

#![warn(missing_docs)]

mod build;
mod institution;
mod people;
mod phantom;
mod plan;
mod render;
mod rng;
#[cfg(test)]
mod tests;

use std::path::Path;

pub use build::MANUFACTURER;
pub use institution::{Institution, region_institutions};
pub use plan::{CharsetChoice, SeriesPlan, StudyPlan, SynthOptions, ct_series_study, plan};

impl StudyPlan {
    /// Number of instances (files) of the study, all series together.
    pub fn instance_count(&self) -> usize {
        self.series.iter().map(|s| s.instance_count).sum()
    }

    /// Lazily generates the Part-10 files, one at a time (bounded memory):
    /// (SOP Instance UID, file bytes), series by series, in instance order.
    pub fn instances(&self) -> impl Iterator<Item = (String, Vec<u8>)> + '_ {
        self.series.iter().flat_map(move |s| {
            let r = build::SeriesRenderer::new(self, s);
            (0..s.instance_count).map(move |i| r.instance(i))
        })
    }

    /// Like [`StudyPlan::instances`], with the series each instance belongs to.
    pub fn instances_by_series(&self) -> impl Iterator<Item = (&SeriesPlan, String, Vec<u8>)> + '_ {
        self.series.iter().flat_map(move |s| {
            let r = build::SeriesRenderer::new(self, s);
            (0..s.instance_count).map(move |i| {
                let (sop, bytes) = r.instance(i);
                (s, sop, bytes)
            })
        })
    }
}

/// Writes every instance of every planned study under `dir` as
/// `<study>/<series>/<sop>.dcm` (UIDs as names); returns the number of files
/// written. Existing files are overwritten (with the same bytes, when the
/// plan is the same).
pub fn write_to_dir(plans: &[StudyPlan], dir: &Path) -> std::io::Result<usize> {
    let mut written = 0;
    for study in plans {
        for series in &study.series {
            let series_dir = dir.join(&study.study_uid).join(&series.series_uid);
            std::fs::create_dir_all(&series_dir)?;
        }
        for (series, sop, bytes) in study.instances_by_series() {
            let path = dir.join(&study.study_uid).join(&series.series_uid).join(format!("{sop}.dcm"));
            std::fs::write(path, bytes)?;
            written += 1;
        }
    }
    Ok(written)
}
