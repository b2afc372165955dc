//! The figures: what each metric is, its budget, the table and the JSON.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::server::Product;

/// The figures measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    StowRate,
    StowRss,
    StowCpu,
    WadoSeries,
    Metadata,
    QidoSeriesInstances,
    Frames,
    Load,
    QidoPatientId,
    QidoLimit,
    QidoName,
    DimseStore1,
    DimseStoreRss,
    DimseStoreCpu,
    DimseStore4,
    FindPatientId,
    FindName,
    FindDate,
    CMove,
    CGet,
    RenderedJpegFirst,
    RenderedJpeg,
    RenderedPngFirst,
    RenderedPng,
    Htj2kEncode,
    DeriveReady,
    FirstView,
    FramesHtj2k,
}

/// What the labels say about the data.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub slices: usize,
    pub series_bytes: u64,
    pub studies: usize,
    pub name_query: String,
    pub name_matches: usize,
    /// The C-FIND StudyDate range and its number of studies.
    pub date_range: String,
    pub date_matches: usize,
    /// `storescu` processes of the parallel C-STORE.
    pub store_associations: usize,
    /// Size of the CT series' frames.
    pub rows: u32,
    pub columns: u32,
    /// Requests timed after the first one of each rendered format.
    pub rendered_requests: usize,
}

impl Metric {
    pub const ALL: [Metric; 28] = [
        Metric::StowRate,
        Metric::StowRss,
        Metric::StowCpu,
        Metric::WadoSeries,
        Metric::Metadata,
        Metric::QidoSeriesInstances,
        Metric::Frames,
        Metric::Load,
        Metric::QidoPatientId,
        Metric::QidoLimit,
        Metric::QidoName,
        Metric::DimseStore1,
        Metric::DimseStoreRss,
        Metric::DimseStoreCpu,
        Metric::DimseStore4,
        Metric::CMove,
        Metric::CGet,
        Metric::FindPatientId,
        Metric::FindName,
        Metric::FindDate,
        Metric::RenderedJpegFirst,
        Metric::RenderedJpeg,
        Metric::RenderedPngFirst,
        Metric::RenderedPng,
        Metric::Htj2kEncode,
        Metric::DeriveReady,
        Metric::FirstView,
        Metric::FramesHtj2k,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Metric::StowRate => "stow_instances_per_s",
            Metric::StowRss => "stow_peak_rss_mb",
            Metric::StowCpu => "stow_server_cpu_s",
            Metric::WadoSeries => "wado_series_mb_per_s",
            Metric::Metadata => "series_metadata_ms",
            Metric::QidoSeriesInstances => "qido_series_instances_ms",
            Metric::Frames => "frames_6_connections_s",
            Metric::Load => "load_small_studies_instances_per_s",
            Metric::QidoPatientId => "qido_patient_id_ms",
            Metric::QidoLimit => "qido_limit_100_ms",
            Metric::QidoName => "qido_patient_name_wildcard_ms",
            Metric::DimseStore1 => "storescu_1_association_instances_per_s",
            Metric::DimseStoreRss => "storescu_peak_rss_mb",
            Metric::DimseStoreCpu => "storescu_server_cpu_s",
            Metric::DimseStore4 => "storescu_parallel_associations_instances_per_s",
            Metric::FindPatientId => "cfind_study_patient_id_ms",
            Metric::FindName => "cfind_study_patient_name_wildcard_ms",
            Metric::FindDate => "cfind_study_date_range_ms",
            Metric::CMove => "cmove_series_mb_per_s",
            Metric::CGet => "cget_series_mb_per_s",
            Metric::RenderedJpegFirst => "rendered_jpeg_first_ms",
            Metric::RenderedJpeg => "rendered_jpeg_ms",
            Metric::RenderedPngFirst => "rendered_png_first_ms",
            Metric::RenderedPng => "rendered_png_ms",
            Metric::Htj2kEncode => "htj2k_encode_frame_ms",
            Metric::DeriveReady => "streaming_copy_ready_s",
            Metric::FirstView => "first_view_percent_of_lossless",
            Metric::FramesHtj2k => "frames_htj2k_6_connections_s",
        }
    }

    pub fn label(self, c: &Context) -> String {
        let n = c.slices;
        let k = if c.studies.is_multiple_of(1000) { format!("{}k", c.studies / 1000) } else { c.studies.to_string() };
        match self {
            Metric::StowRate => {
                format!("STOW-RS {n}-image CT series ({:.0} MB), 1 request", c.series_bytes as f64 / 1e6)
            }
            Metric::StowRss => "peak RSS of the server, STOW-RS ingest".into(),
            Metric::StowCpu => "server process CPU time during the STOW-RS".into(),
            Metric::WadoSeries => "WADO-RS whole series, multipart".into(),
            Metric::Metadata => format!("series /metadata ({n} instances), warm"),
            Metric::QidoSeriesInstances => format!("QIDO series' {n} instances"),
            Metric::Frames => format!("{n} frames, 1 request each, 6 connections"),
            Metric::Load => format!("load {k} one-instance studies (STOW x200)"),
            Metric::QidoPatientId => format!("QIDO /studies?PatientID= ({k} studies) p50/p95"),
            Metric::QidoLimit => format!("QIDO /studies?limit=100 ({k}) p50/p95"),
            Metric::QidoName => {
                format!("QIDO /studies?PatientName={} ({k}, {} hits) p50/p95", c.name_query, c.name_matches)
            }
            Metric::DimseStore1 => {
                format!("C-STORE storescu {n} images ({:.0} MB), 1 association", c.series_bytes as f64 / 1e6)
            }
            Metric::DimseStoreRss => "peak RSS of the server, C-STORE ingest".into(),
            Metric::DimseStoreCpu => "server process CPU time during the storescu".into(),
            Metric::DimseStore4 => {
                let a = c.store_associations;
                format!("C-STORE {a} storescu in parallel, {a} assoc. x {}", n.div_ceil(a.max(1)))
            }
            Metric::FindPatientId => format!("C-FIND study PatientID= ({k} studies, 1 hit) p50/p95"),
            Metric::FindName => {
                format!("C-FIND study PatientName={} ({k}, {} hits) p50/p95", c.name_query, c.name_matches)
            }
            Metric::FindDate => {
                format!("C-FIND study StudyDate={} ({k}, {} hits) p50/p95", c.date_range, c.date_matches)
            }
            Metric::CMove => format!("C-MOVE series to storescp (movescu), {n} images"),
            Metric::CGet => format!("C-GET series (getscu), {n} images"),
            Metric::RenderedJpegFirst => format!("frame /rendered JPEG ({}x{} CT), first request", c.columns, c.rows),
            Metric::RenderedJpeg => format!("frame /rendered JPEG, {} next, keep-alive", c.rendered_requests),
            Metric::RenderedPngFirst => format!("frame /rendered PNG ({}x{} CT), first request", c.columns, c.rows),
            Metric::RenderedPng => format!("frame /rendered PNG, {} next, keep-alive", c.rendered_requests),
            Metric::Htj2kEncode => format!("HTJ2K lossless encode, {}x{} CT frame, 1 thread", c.columns, c.rows),
            Metric::DeriveReady => format!("streaming copy of {n} images ready after the STOW"),
            Metric::FirstView => "first view: HTJ2K RPCL bytes to 64x64, of lossless".into(),
            Metric::FramesHtj2k => format!("{n} frames as HTJ2K RPCL, 1 request each, 6 conn."),
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Metric::StowRate | Metric::Load | Metric::DimseStore1 | Metric::DimseStore4 => "instances/s",
            Metric::StowRss | Metric::DimseStoreRss => "MB",
            Metric::WadoSeries | Metric::CMove | Metric::CGet => "MB/s",
            Metric::Frames | Metric::StowCpu | Metric::DimseStoreCpu | Metric::DeriveReady | Metric::FramesHtj2k => "s",
            Metric::FirstView => "%",
            _ => "ms",
        }
    }

    /// Figures from a distribution of single requests (p50 and p95).
    pub fn is_percentile(self) -> bool {
        matches!(
            self,
            Metric::QidoPatientId
                | Metric::QidoLimit
                | Metric::QidoName
                | Metric::FindPatientId
                | Metric::FindName
                | Metric::FindDate
        )
    }

    pub fn budget(self) -> &'static str {
        match self {
            Metric::StowRate => ">= 300/s and >= 2x Orthanc",
            Metric::StowRss => "< 150 MB",
            Metric::WadoSeries => ">= 1000 MB/s and > Orthanc",
            Metric::Metadata => "< 50 ms",
            Metric::QidoSeriesInstances => "< 50 ms",
            Metric::Frames => "< 1 s",
            Metric::Load | Metric::StowCpu => "-",
            Metric::QidoPatientId => "p50 < 2 ms",
            Metric::QidoLimit => "p50 < 20 ms",
            Metric::QidoName => "p50 < 10 ms",
            Metric::DimseStore1 => ">= 300/s and >= 2x Orthanc",
            Metric::DimseStore4 => ">= 400/s and >= 2x Orthanc",
            Metric::DimseStoreRss | Metric::DimseStoreCpu => "-",
            Metric::FindPatientId | Metric::FindName | Metric::FindDate => "p50 < 10 ms",
            Metric::CMove | Metric::CGet => ">= 2x Orthanc",
            Metric::RenderedJpegFirst | Metric::Htj2kEncode => "< 30 ms",
            Metric::RenderedJpeg => "< Orthanc",
            Metric::DeriveReady => "< 60 s",
            Metric::FirstView => "< 10 % of lossless",
            Metric::RenderedPngFirst | Metric::RenderedPng | Metric::FramesHtj2k => "-",
        }
    }

    /// Whether a Yunying figure meets the budget (None: no budget).
    pub fn check(self, v: f64, orthanc: Option<f64>) -> Option<bool> {
        Some(match self {
            Metric::StowRate => v >= 300.0 && orthanc.is_none_or(|o| v >= 2.0 * o),
            Metric::StowRss => v < 150.0,
            Metric::WadoSeries => v >= 1000.0 && orthanc.is_none_or(|o| v > o),
            Metric::Metadata | Metric::QidoSeriesInstances => v < 50.0,
            Metric::Frames => v < 1.0,
            Metric::Load | Metric::StowCpu => return None,
            Metric::QidoPatientId => v < 2.0,
            Metric::QidoLimit => v < 20.0,
            Metric::QidoName => v < 10.0,
            Metric::DimseStore1 => v >= 300.0 && orthanc.is_none_or(|o| v >= 2.0 * o),
            Metric::DimseStore4 => v >= 400.0 && orthanc.is_none_or(|o| v >= 2.0 * o),
            Metric::DimseStoreRss | Metric::DimseStoreCpu => return None,
            Metric::FindPatientId | Metric::FindName | Metric::FindDate => v < 10.0,
            Metric::CMove | Metric::CGet => orthanc.is_none_or(|o| v >= 2.0 * o),
            Metric::RenderedJpegFirst | Metric::Htj2kEncode => v < 30.0,
            Metric::RenderedJpeg => orthanc.is_none_or(|o| v < o),
            Metric::DeriveReady => v < 60.0,
            Metric::FirstView => v < 10.0,
            Metric::RenderedPngFirst | Metric::RenderedPng | Metric::FramesHtj2k => return None,
        })
    }

    /// Whether the budget compares with Orthanc.
    fn compares_with_orthanc(self) -> bool {
        matches!(
            self,
            Metric::StowRate
                | Metric::WadoSeries
                | Metric::DimseStore1
                | Metric::DimseStore4
                | Metric::CMove
                | Metric::CGet
                | Metric::RenderedJpeg
        )
    }

    /// Whether the cell shows the ratio to Orthanc's figure.
    fn shows_ratio(self) -> bool {
        self.compares_with_orthanc()
            || matches!(self, Metric::RenderedJpegFirst | Metric::RenderedPngFirst | Metric::RenderedPng)
    }

    /// Times, where less is better (the ratio to Orthanc reads "faster").
    fn lower_is_better(self) -> bool {
        matches!(
            self,
            Metric::RenderedJpegFirst | Metric::RenderedJpeg | Metric::RenderedPngFirst | Metric::RenderedPng
        )
    }

    pub fn fmt(self, v: f64) -> String {
        match self {
            Metric::StowRate | Metric::Load | Metric::DimseStore1 | Metric::DimseStore4 => format!("{v:.0}/s"),
            Metric::StowRss | Metric::DimseStoreRss => format!("{v:.0} MB"),
            Metric::WadoSeries | Metric::CMove | Metric::CGet => format!("{v:.0} MB/s"),
            Metric::Frames | Metric::FramesHtj2k => format!("{v:.3} s"),
            Metric::StowCpu | Metric::DimseStoreCpu => format!("{v:.2} s"),
            Metric::DeriveReady => format!("{v:.1} s"),
            Metric::FirstView => format!("{v:.1} %"),
            _ if v < 10.0 => format!("{v:.2} ms"),
            _ => format!("{v:.1} ms"),
        }
    }

    fn fmt_bare(self, v: f64) -> String {
        match self {
            Metric::StowRate
            | Metric::Load
            | Metric::StowRss
            | Metric::WadoSeries
            | Metric::DimseStore1
            | Metric::DimseStore4
            | Metric::DimseStoreRss
            | Metric::CMove
            | Metric::CGet => format!("{v:.0}"),
            Metric::Frames | Metric::FramesHtj2k => format!("{v:.3}"),
            Metric::StowCpu | Metric::DimseStoreCpu => format!("{v:.2}"),
            Metric::DeriveReady | Metric::FirstView => format!("{v:.1}"),
            _ if v < 10.0 => format!("{v:.2}"),
            _ => format!("{v:.1}"),
        }
    }
}

/// The values of one metric for one product.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// One value per run (the median of that run's repetitions).
    pub runs: Vec<f64>,
    /// Single-request times, for percentile metrics.
    pub samples: Vec<f64>,
    pub errors: Vec<String>,
    /// Shown after the value in the table (e.g. the bytes behind a time).
    pub note: Option<String>,
    /// Further figures, in the JSON only.
    pub extra: serde_json::Map<String, Value>,
}

pub fn median(v: &[f64]) -> Option<f64> {
    percentile(v, 50.0)
}

/// Nearest-rank percentile.
pub fn percentile(v: &[f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if p == 50.0 && s.len().is_multiple_of(2) {
        let m = s.len() / 2;
        return Some((s[m - 1] + s[m]) / 2.0);
    }
    let rank = ((p / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
    Some(s[rank.min(s.len()) - 1])
}

impl Entry {
    /// The reported figure: p50 of the samples, or the median of the runs.
    /// None when any error happened (a broken server does not get a figure).
    pub fn value(&self, m: Metric) -> Option<f64> {
        if !self.errors.is_empty() {
            return None;
        }
        if m.is_percentile() { median(&self.samples) } else { median(&self.runs) }
    }

    pub fn p95(&self) -> Option<f64> {
        percentile(&self.samples, 95.0)
    }
}

/// Every figure of the run.
#[derive(Debug, Default)]
pub struct Results {
    pub products: Vec<Product>,
    pub entries: BTreeMap<(Metric, Product), Entry>,
    /// Products that could not be measured, and why.
    pub unavailable: BTreeMap<Product, String>,
    /// Metrics not run for a product, and why (e.g. Orthanc's 10k QIDO).
    pub not_run: BTreeMap<(Metric, Product), String>,
}

impl Results {
    pub fn entry(&mut self, m: Metric, p: Product) -> &mut Entry {
        self.entries.entry((m, p)).or_default()
    }

    pub fn push(&mut self, m: Metric, p: Product, v: f64) {
        self.entry(m, p).runs.push(v);
    }

    pub fn error(&mut self, m: Metric, p: Product, e: String) {
        eprintln!("   !! {} / {}: {e}", p.title(), m.key());
        self.entry(m, p).errors.push(e);
    }

    fn value(&self, m: Metric, p: Product) -> Option<f64> {
        self.entries.get(&(m, p)).and_then(|e| e.value(m))
    }

    fn cell(&self, m: Metric, p: Product, c: &Context) -> String {
        if self.unavailable.contains_key(&p) {
            return "unavailable".into();
        }
        if let Some(why) = self.not_run.get(&(m, p)) {
            return why.clone();
        }
        let Some(e) = self.entries.get(&(m, p)) else { return "-".into() };
        if !e.errors.is_empty() {
            return "ERROR".into();
        }
        let Some(v) = e.value(m) else { return "-".into() };
        if m.is_percentile() {
            let p95 = e.p95().unwrap_or(f64::NAN);
            return format!("{} / {}", m.fmt_bare(v), m.fmt(p95));
        }
        let mut s = m.fmt(v);
        if matches!(m, Metric::CMove | Metric::CGet) && v > 0.0 && c.series_bytes > 0 {
            // The time of the transfer, from the rate and the series' bytes.
            s.push_str(&format!(", {:.2} s", c.series_bytes as f64 / 1e6 / v));
        }
        if p.is_yunying()
            && m.shows_ratio()
            && let Some(o) = self.value(m, Product::Orthanc)
            && o > 0.0
            && v > 0.0
        {
            if !m.lower_is_better() {
                s.push_str(&format!(" ({:.1}x)", v / o));
            } else if v <= o {
                s.push_str(&format!(" ({:.1}x faster)", o / v));
            } else {
                s.push_str(&format!(" ({:.1}x slower)", v / o));
            }
        }
        if let Some(note) = &e.note {
            s.push_str(&format!("; {note}"));
        }
        s
    }

    /// "pass", "FAIL (...)" or "-" for a metric, over the Yunying columns.
    pub fn verdict(&self, m: Metric) -> (String, bool) {
        let orthanc = self.value(m, Product::Orthanc);
        let mut failed = Vec::new();
        let mut checked = 0;
        for &p in self.products.iter().filter(|p| p.is_yunying()) {
            if self.unavailable.contains_key(&p) || self.not_run.contains_key(&(m, p)) {
                continue;
            }
            let Some(e) = self.entries.get(&(m, p)) else { continue };
            if !e.errors.is_empty() {
                failed.push(format!("{}: error", p.short()));
                continue;
            }
            match e.value(m).and_then(|v| m.check(v, orthanc)) {
                Some(true) => checked += 1,
                Some(false) => failed.push(p.short().to_string()),
                None => {}
            }
        }
        if !failed.is_empty() {
            (format!("FAIL ({})", failed.join(", ")), true)
        } else if checked > 0 {
            let note = if m.compares_with_orthanc() && orthanc.is_none() { " (no Orthanc figure)" } else { "" };
            (format!("pass{note}"), false)
        } else {
            ("-".into(), false)
        }
    }

    /// The table, as printed.
    pub fn table(&self, c: &Context) -> String {
        let mut header = vec!["metric".to_string()];
        header.extend(self.products.iter().map(|p| p.title().to_string()));
        header.push("budget (Yunying)".into());
        header.push("verdict".into());
        let mut rows = vec![header];
        for m in Metric::ALL {
            if !self.products.iter().any(|&p| self.entries.contains_key(&(m, p)) || self.not_run.contains_key(&(m, p)))
            {
                continue;
            }
            let mut row = vec![m.label(c)];
            row.extend(self.products.iter().map(|&p| self.cell(m, p, c)));
            row.push(m.budget().to_string());
            row.push(self.verdict(m).0);
            rows.push(row);
        }
        let cols = rows[0].len();
        let width: Vec<usize> =
            (0..cols).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
        let line = |r: &Vec<String>| {
            let cells: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let pad = width[i] - s.chars().count();
                    if i == 0 || i + 1 >= cols - 1 {
                        format!("{s}{}", " ".repeat(pad))
                    } else {
                        format!("{}{s}", " ".repeat(pad))
                    }
                })
                .collect();
            format!("| {} |", cells.join(" | "))
        };
        let sep = format!("|{}|", width.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("|"));
        let mut out = String::new();
        out.push_str(&line(&rows[0]));
        out.push('\n');
        out.push_str(&sep);
        out.push('\n');
        for r in &rows[1..] {
            out.push_str(&line(r));
            out.push('\n');
        }
        out
    }

    /// Every run's value, the p95s, the errors.
    pub fn details(&self, c: &Context) -> String {
        let mut out = String::new();
        let w = Metric::ALL.iter().map(|m| m.label(c).chars().count()).max().unwrap_or(40);
        for m in Metric::ALL {
            for &p in &self.products {
                let Some(e) = self.entries.get(&(m, p)) else { continue };
                if !e.runs.is_empty() && !m.is_percentile() {
                    let runs: Vec<String> = e.runs.iter().map(|v| m.fmt_bare(*v)).collect();
                    out.push_str(&format!(
                        "  {:<w$} {:<20} runs: [{}] {}\n",
                        m.label(c),
                        p.title(),
                        runs.join(", "),
                        m.unit()
                    ));
                }
                if m.is_percentile() && !e.samples.is_empty() {
                    let q = |x| percentile(&e.samples, x).map(|v| m.fmt_bare(v)).unwrap_or_default();
                    out.push_str(&format!(
                        "  {:<w$} {:<20} n={} min {} p50 {} p95 {} max {} ms\n",
                        m.label(c),
                        p.title(),
                        e.samples.len(),
                        q(0.0),
                        q(50.0),
                        q(95.0),
                        q(100.0)
                    ));
                }
                if !e.extra.is_empty() {
                    let extra = Value::Object(e.extra.clone());
                    out.push_str(&format!("  {:<w$} {:<20} {extra}\n", m.label(c), p.title()));
                }
                for err in &e.errors {
                    out.push_str(&format!("  {:<w$} {:<20} ERROR: {err}\n", m.label(c), p.title()));
                }
            }
        }
        for (p, why) in &self.unavailable {
            out.push_str(&format!("  {} unavailable: {why}\n", p.title()));
        }
        out
    }

    pub fn failures(&self, c: &Context) -> Vec<String> {
        Metric::ALL
            .iter()
            .filter_map(|&m| {
                let (v, failed) = self.verdict(m);
                failed.then(|| format!("{}: {v} (budget {})", m.label(c), m.budget()))
            })
            .collect()
    }

    pub fn to_json(&self, c: &Context) -> Value {
        let metrics: Vec<Value> = Metric::ALL
            .iter()
            .filter(|&&m| self.products.iter().any(|&p| self.entries.contains_key(&(m, p))))
            .map(|&m| {
                let mut values = serde_json::Map::new();
                for &p in &self.products {
                    let v = if let Some(why) = self.unavailable.get(&p) {
                        json!({"unavailable": why})
                    } else if let Some(why) = self.not_run.get(&(m, p)) {
                        json!({"not_run": why})
                    } else if let Some(e) = self.entries.get(&(m, p)) {
                        let mut o = json!({"value": e.value(m), "errors": e.errors});
                        if let Some(note) = &e.note {
                            o["note"] = json!(note);
                        }
                        if !e.extra.is_empty() {
                            o["details"] = Value::Object(e.extra.clone());
                        }
                        if m.is_percentile() {
                            o["p50"] = json!(median(&e.samples));
                            o["p95"] = json!(e.p95());
                            o["min"] = json!(percentile(&e.samples, 0.0));
                            o["max"] = json!(percentile(&e.samples, 100.0));
                            o["requests"] = json!(e.samples.len());
                        } else {
                            o["runs"] = json!(e.runs);
                        }
                        o
                    } else {
                        Value::Null
                    };
                    values.insert(p.key().to_string(), v);
                }
                let (verdict, _) = self.verdict(m);
                json!({
                    "key": m.key(), "label": m.label(c), "unit": m.unit(), "budget": m.budget(),
                    "verdict": verdict, "values": values,
                })
            })
            .collect();
        json!({ "metrics": metrics })
    }
}
