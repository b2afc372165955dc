//! Electronic film (电子胶片, R-47): a doctor picks key images of a study and
//! a grid; the archive renders them, lays them out under the institution's
//! and the patient's header (`yunying_pixels::film`), and stores the sheet
//! with the study, through the one ingest road, as DICOM: each page a
//! Secondary Capture image (JPEG), the whole sheet an Encapsulated PDF, in a
//! new series "电子胶片". Stored like any instance, film is archived,
//! retrieved, shared and shown to the patient as any image is; film made by
//! the hospital's own systems (a secondary capture or a PDF) arrives the same
//! way and is shown as it is.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use yunying_dicom::write::ObjectBuilder;
use yunying_dicom::{Tag, VR};
use yunying_index::Scope;
use yunying_pixels::VoiFunction;
use yunying_pixels::film::{Cell, Corner, FilmFont, Label, Sheet};

use crate::{Archive, ArchiveError, Caller, IngestSource};

/// What a film is made of (the body of `POST /api/studies/{study}/films`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilmRequest {
    pub columns: u32,
    pub rows: u32,
    /// `14x17` (default), `11x14`, `8x10`, `A4`, `A3`.
    #[serde(default = "default_paper")]
    pub paper: String,
    /// Resolution of the pages (default 150).
    #[serde(default = "default_dpi")]
    pub dpi: u32,
    /// A title under the institution's name (default: the study description).
    pub title: Option<String>,
    /// The images, in reading order; more than one page's worth makes more pages.
    pub images: Vec<FilmImage>,
}

fn default_paper() -> String {
    "14x17".into()
}
fn default_dpi() -> u32 {
    150
}

/// One image of the sheet.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilmImage {
    pub series: String,
    pub instance: String,
    #[serde(default = "one")]
    pub frame: u32,
    /// Window centre and width (default: the image's own).
    pub window: Option<[f64; 2]>,
    /// Text placed on the image, at fractions of its width and height.
    #[serde(default)]
    pub labels: Vec<FilmLabel>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilmLabel {
    pub text: String,
    pub x: f64,
    pub y: f64,
}

/// The film as stored.
#[derive(Debug, Clone, Serialize)]
pub struct FilmMade {
    pub study: String,
    pub series: String,
    /// SOP Instance UIDs of the pages (Secondary Capture), in order.
    pub pages: Vec<String>,
    /// SOP Instance UID of the PDF (Encapsulated PDF).
    pub pdf: String,
}

const SECONDARY_CAPTURE: &str = "1.2.840.10008.5.1.4.1.1.7";
const ENCAPSULATED_PDF: &str = "1.2.840.10008.5.1.4.1.1.104.1";
const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";
const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
const MAX_IMAGES: usize = 12 * 12 * 10;

/// Fonts with Chinese glyphs looked for when none is configured.
const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
];

/// The font film text is drawn with: the configured one, else the first
/// CJK font found.
pub(crate) fn find_font(configured: Option<&Path>) -> Result<PathBuf, ArchiveError> {
    if let Some(p) = configured {
        return Ok(p.to_path_buf());
    }
    FONT_CANDIDATES.iter().map(PathBuf::from).find(|p| p.exists()).ok_or_else(|| {
        ArchiveError::Config(
            "no font with Chinese glyphs for film text: install fonts-wqy-microhei (Debian) or set [pixels] film_font"
                .into(),
        )
    })
}

/// The string value of a DICOM JSON attribute (a person name's groups
/// joined with `=`).
fn text(meta: &Value, tag: &str) -> Option<String> {
    let v = meta.get(tag)?.get("Value")?.get(0)?;
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Object(pn) => {
            let g = |k: &str| pn.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let (a, i, p) = (g("Alphabetic"), g("Ideographic"), g("Phonetic"));
            let mut s = a;
            if !i.is_empty() || !p.is_empty() {
                s.push('=');
                s.push_str(&i);
            }
            if !p.is_empty() {
                s.push('=');
                s.push_str(&p);
            }
            s
        }
        _ => return None,
    };
    Some(s).filter(|s| !s.is_empty())
}

/// A person name for reading: the ideographic form when there is one.
fn readable_name(pn: &str) -> String {
    let mut groups = pn.split('=');
    let alphabetic = groups.next().unwrap_or("").replace('^', " ");
    match groups.next().filter(|g| !g.is_empty()) {
        Some(ideographic) => format!("{} {}", ideographic.replace('^', ""), alphabetic.trim()),
        None => alphabetic.trim().to_string(),
    }
}

fn date(d: &str) -> String {
    if d.len() == 8 { format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..]) } else { d.to_string() }
}

/// Attributes copied from the study's images onto the film (patient and study modules).
const COPIED: &[(&str, u16, u16, VR)] = &[
    ("00100010", 0x0010, 0x0010, VR::PN),
    ("00100020", 0x0010, 0x0020, VR::LO),
    ("00100021", 0x0010, 0x0021, VR::LO),
    ("00100030", 0x0010, 0x0030, VR::DA),
    ("00100040", 0x0010, 0x0040, VR::CS),
    ("00101010", 0x0010, 0x1010, VR::AS),
    ("00080020", 0x0008, 0x0020, VR::DA),
    ("00080030", 0x0008, 0x0030, VR::TM),
    ("00080050", 0x0008, 0x0050, VR::SH),
    ("00080090", 0x0008, 0x0090, VR::PN),
    ("00081030", 0x0008, 0x1030, VR::LO),
    ("00200010", 0x0020, 0x0010, VR::SH),
    ("00080080", 0x0008, 0x0080, VR::LO),
];

impl Archive {
    /// Makes a film of a study's images and stores it with the study.
    pub async fn make_film(self: &Arc<Self>, caller: &Caller, study: &str, req: &FilmRequest) -> Result<FilmMade, ArchiveError> {
        let facts = self.study_access(caller, crate::policy::Action::Read, study).await?;
        self.audit_access(caller, crate::policy::Action::Read, &facts, serde_json::json!({ "resource": "film" })).await;
        if req.images.is_empty() || req.images.len() > MAX_IMAGES {
            return Err(ArchiveError::BadRequest(format!("a film has 1 to {MAX_IMAGES} images")));
        }
        if req.columns == 0 || req.rows == 0 || req.columns > 12 || req.rows > 12 {
            return Err(ArchiveError::BadRequest("columns and rows are 1 to 12".into()));
        }
        if !(72..=300).contains(&req.dpi) {
            return Err(ArchiveError::BadRequest("dpi is 72 to 300".into()));
        }
        let paper = yunying_pixels::film::paper_mm(&req.paper)
            .ok_or_else(|| ArchiveError::BadRequest(format!("paper {:?}: 14x17, 11x14, 8x10, A4 or A3", req.paper)))?;
        let font_path = find_font(self.settings.film_font.as_deref())?;
        let font = tokio::fs::read(&font_path)
            .await
            .map_err(|e| ArchiveError::Config(format!("film font {}: {e}", font_path.display())))?;
        let font = FilmFont::load(font).map_err(|e| ArchiveError::Config(format!("film font {}: {e}", font_path.display())))?;

        // The images, found and checked before anything is drawn.
        let mut insts = Vec::with_capacity(req.images.len());
        for im in &req.images {
            let found = self.stored(&Scope::instance(study, &im.series, &im.instance)).await?;
            insts.push(found.into_iter().next().ok_or_else(|| ArchiveError::NotFound(im.instance.clone()))?);
        }
        let meta: Value = self
            .index
            .metadata(&Scope::instance(study, &req.images[0].series, &req.images[0].instance))
            .await?
            .first()
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or(Value::Null);
        let institution = self
            .find_institution(|i| i.id == facts.institution, true)
            .await?
            .map(|i| i.name_zh)
            .unwrap_or_else(|| text(&meta, "00080080").unwrap_or_default());
        let title = req.title.clone().or_else(|| text(&meta, "00081030")).unwrap_or_default();
        let patient = format!(
            "{}  ID {}  {}  {}",
            readable_name(&text(&meta, "00100010").unwrap_or_default()),
            text(&meta, "00100020").unwrap_or_default(),
            text(&meta, "00100040").unwrap_or_default(),
            text(&meta, "00101010").unwrap_or_default()
        );
        let exam = format!(
            "{}  {}  {}",
            date(&text(&meta, "00080020").unwrap_or_default()),
            text(&meta, "00080060").unwrap_or_default(),
            text(&meta, "00080050").map(|a| format!("No. {a}")).unwrap_or_default()
        );
        let header = vec![format!("{institution}  {title}"), patient.trim().to_string(), exam.trim().to_string()];

        // The pages: images rendered to fit their cells, then composed.
        let (width, height) = ((paper.0 / 25.4 * req.dpi as f64) as u32, (paper.1 / 25.4 * req.dpi as f64) as u32);
        let per_page = (req.columns * req.rows) as usize;
        let page_count = req.images.len().div_ceil(per_page);
        // China Standard Time (UTC+8), as the sheet is read there.
        let printed = yunying_util::time::rfc3339_millis(yunying_util::time::now_millis() + 8 * 3600 * 1000);
        let printed = printed.get(..16).unwrap_or(&printed).replace('T', " ");
        let mut sheets = Vec::with_capacity(page_count);
        for page in 0..page_count {
            let mut sheet = Sheet {
                width,
                height,
                columns: req.columns,
                rows: req.rows,
                header: header.clone(),
                footer: format!("{printed}    {}/{page_count}    Yunying 云影", page + 1),
                cells: Vec::new(),
            };
            let cell = sheet.cell_size();
            for (k, (im, inst)) in req.images.iter().zip(&insts).enumerate().skip(page * per_page).take(per_page) {
                let window = im.window.map(|[c, w]| (c, w.max(1.0), VoiFunction::Linear));
                let image = self.rendered_pixels(inst, im.frame, window, Some(cell)).await?;
                let mut labels = vec![Label::Corner(Corner::TopLeft, format!("{}", k + 1))];
                if let Some([c, w]) = im.window {
                    labels.push(Label::Corner(Corner::BottomLeft, format!("W {w:.0} L {c:.0}")));
                }
                labels.extend(im.labels.iter().map(|l| Label::At { x: l.x, y: l.y, text: l.text.clone() }));
                sheet.cells.push(Cell { image, labels });
            }
            sheets.push(sheet);
        }
        let doc_title = format!("{institution} {title}");
        let (pages, pdf) = tokio::task::spawn_blocking(move || {
            let mut pages = Vec::with_capacity(sheets.len());
            for sheet in &sheets {
                let page = sheet.compose(&font)?;
                pages.push((page.width, page.height, yunying_pixels::encode::to_jpeg(&page.as_rendered(), 90)?));
            }
            let pdf = yunying_pixels::film::pdf(&pages, paper, &doc_title);
            Ok::<_, yunying_pixels::PixelError>((pages, pdf))
        })
        .await
        .map_err(|e| ArchiveError::Internal(e.to_string()))?
        .map_err(|e| ArchiveError::BadRequest(format!("cannot compose the film: {e}")))?;

        // Stored with the study, through the ingest road (the caller must
        // be allowed to store into the study's institution).
        let series = yunying_util::uid::generate();
        let mut made = FilmMade { study: study.to_string(), series: series.clone(), pages: Vec::new(), pdf: String::new() };
        let common = |b: &mut ObjectBuilder, number: u16| {
            b.charset("ISO_IR 192");
            b.str(Tag(0x0008, 0x0005), VR::CS, "ISO_IR 192");
            for (key, g, e, vr) in COPIED {
                if let Some(v) = text(&meta, key) {
                    b.str(Tag(*g, *e), *vr, &v);
                }
            }
            b.str(Tag(0x0020, 0x000D), VR::UI, study);
            b.str(Tag(0x0020, 0x000E), VR::UI, &series);
            b.str(Tag(0x0020, 0x0011), VR::IS, "9001");
            b.str(Tag(0x0020, 0x0013), VR::IS, &number.to_string());
            b.str(Tag(0x0008, 0x103E), VR::LO, "电子胶片 Film");
            b.str(Tag(0x0008, 0x0070), VR::LO, "Yunying");
            b.str(Tag(0x0008, 0x0012), VR::DA, &yunying_util::time::today_da_cst());
        };
        for (n, (w, h, jpeg)) in pages.into_iter().enumerate() {
            let sop = yunying_util::uid::generate();
            let mut b = ObjectBuilder::new(SECONDARY_CAPTURE, &sop, JPEG_BASELINE);
            common(&mut b, n as u16 + 1);
            b.str(Tag(0x0008, 0x0008), VR::CS, "DERIVED\\SECONDARY");
            b.str(Tag(0x0008, 0x0060), VR::CS, "OT");
            b.str(Tag(0x0008, 0x0064), VR::CS, "WSD");
            b.str(Tag(0x0028, 0x0301), VR::CS, "YES");
            b.u16(Tag(0x0028, 0x0002), 3);
            b.str(Tag(0x0028, 0x0004), VR::CS, "YBR_FULL_422");
            b.u16(Tag(0x0028, 0x0006), 0);
            b.u16(Tag(0x0028, 0x0010), h as u16);
            b.u16(Tag(0x0028, 0x0011), w as u16);
            b.u16(Tag(0x0028, 0x0100), 8);
            b.u16(Tag(0x0028, 0x0101), 8);
            b.u16(Tag(0x0028, 0x0102), 7);
            b.u16(Tag(0x0028, 0x0103), 0);
            b.str(Tag(0x0028, 0x2110), VR::CS, "01");
            b.str(Tag(0x0028, 0x2114), VR::CS, "ISO_10918_1");
            b.pixel_data_fragments(&[jpeg]);
            self.store_made(caller, facts.institution, b.to_bytes()).await?;
            made.pages.push(sop);
        }
        let sop = yunying_util::uid::generate();
        let mut b = ObjectBuilder::new(ENCAPSULATED_PDF, &sop, EXPLICIT_LE);
        common(&mut b, page_count as u16 + 1);
        b.str(Tag(0x0008, 0x0060), VR::CS, "DOC");
        b.str(Tag(0x0008, 0x0064), VR::CS, "WSD");
        b.str(Tag(0x0028, 0x0301), VR::CS, "YES");
        b.str(Tag(0x0042, 0x0010), VR::ST, "电子胶片");
        b.str(Tag(0x0042, 0x0012), VR::LO, "application/pdf");
        b.dataset.sequence(Tag(0x0040, 0xA043), Vec::new());
        let mut pdf = pdf;
        if pdf.len() % 2 == 1 {
            pdf.push(0);
        }
        b.bytes(Tag(0x0042, 0x0011), VR::OB, pdf);
        self.store_made(caller, facts.institution, b.to_bytes()).await?;
        made.pdf = sop;
        tracing::info!(study, series = %made.series, pages = made.pages.len(), "film made");
        Ok(made)
    }

    /// Stores an object the archive made, as the caller.
    async fn store_made(
        self: &Arc<Self>,
        caller: &Caller,
        institution: yunying_util::InstitutionId,
        object: Vec<u8>,
    ) -> Result<(), ArchiveError> {
        let mut source = IngestSource::new("film", caller.principal.id.clone());
        source.caller = caller.clone();
        let staged = self.stage(Some(institution)).map_err(|e| ArchiveError::Internal(e.message))?;
        let staged = staged.write_bytes(Bytes::from(object)).await.map_err(|e| ArchiveError::Internal(e.message))?;
        self.ingest(staged, &source).await.map_err(|e| match e.kind {
            crate::IngestErrorKind::NotAuthorized => ArchiveError::Forbidden(e.message),
            _ => ArchiveError::Internal(e.message),
        })?;
        Ok(())
    }
}
