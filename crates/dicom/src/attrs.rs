//! The attributes the catalog indexes, extracted from a parsed object and
//! normalised (text decoded, padding trimmed, UIDs validated), and the JSON
//! of each query level (patient/study, series, instance) kept for QIDO-RS.

use dicom_core::{Tag, VR};
use serde_json::{Map, Value as Json};

use crate::charset::CharacterSet;
use crate::json::{JsonOptions, to_json};
use crate::parse::{DataSet, Element, ParsedObject};

/// Why an object cannot be indexed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttrError {
    #[error("required attribute {name} {tag} is missing or empty")]
    Missing { name: &'static str, tag: &'static str },
    #[error("attribute {name} has an invalid UID {value:?}: {reason}")]
    BadUid { name: &'static str, value: String, reason: String },
}

/// What the catalog records of one instance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceAttrs {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub study_instance_uid: String,
    pub series_instance_uid: String,
    pub transfer_syntax: String,
    // Patient
    /// The full PN value decoded to Unicode: `Alphabetic=Ideographic=Phonetic`.
    pub patient_name: Option<String>,
    pub patient_id: Option<String>,
    pub issuer_of_patient_id: Option<String>,
    pub patient_birth_date: Option<String>,
    pub patient_sex: Option<String>,
    // Study
    pub study_date: Option<String>,
    pub study_time: Option<String>,
    pub accession_number: Option<String>,
    pub study_id: Option<String>,
    pub study_description: Option<String>,
    pub referring_physician_name: Option<String>,
    pub institution_name: Option<String>,
    /// Admission ID (0038,0010): the visit/encounter number when the modality knows it.
    pub admission_id: Option<String>,
    // Series
    pub modality: Option<String>,
    pub series_number: Option<i64>,
    pub series_description: Option<String>,
    pub body_part_examined: Option<String>,
    pub series_date: Option<String>,
    pub series_time: Option<String>,
    pub station_name: Option<String>,
    // Instance
    pub instance_number: Option<i64>,
    pub rows: Option<u32>,
    pub columns: Option<u32>,
    pub bits_allocated: Option<u32>,
    pub number_of_frames: Option<u32>,
    pub content_date: Option<String>,
    pub content_time: Option<String>,
}

/// Patient- and study-level attributes (returned by QIDO-RS at study level).
pub const STUDY_LEVEL: &[Tag] = &[
    Tag(0x0008, 0x0020), // StudyDate
    Tag(0x0008, 0x0030), // StudyTime
    Tag(0x0008, 0x0050), // AccessionNumber
    Tag(0x0008, 0x0051), // IssuerOfAccessionNumberSequence
    Tag(0x0008, 0x0080), // InstitutionName
    Tag(0x0008, 0x0090), // ReferringPhysicianName
    Tag(0x0008, 0x0201), // TimezoneOffsetFromUTC
    Tag(0x0008, 0x1030), // StudyDescription
    Tag(0x0008, 0x1032), // ProcedureCodeSequence
    Tag(0x0008, 0x1060), // NameOfPhysiciansReadingStudy
    Tag(0x0008, 0x1080), // AdmittingDiagnosesDescription
    Tag(0x0010, 0x0010), // PatientName
    Tag(0x0010, 0x0020), // PatientID
    Tag(0x0010, 0x0021), // IssuerOfPatientID
    Tag(0x0010, 0x0024), // IssuerOfPatientIDQualifiersSequence
    Tag(0x0010, 0x0030), // PatientBirthDate
    Tag(0x0010, 0x0032), // PatientBirthTime
    Tag(0x0010, 0x0040), // PatientSex
    Tag(0x0010, 0x1000), // OtherPatientIDs (retired, still sent)
    Tag(0x0010, 0x1001), // OtherPatientNames
    Tag(0x0010, 0x1002), // OtherPatientIDsSequence
    Tag(0x0010, 0x1010), // PatientAge
    Tag(0x0010, 0x1020), // PatientSize
    Tag(0x0010, 0x1030), // PatientWeight
    Tag(0x0010, 0x2160), // EthnicGroup
    Tag(0x0010, 0x21B0), // AdditionalPatientHistory
    Tag(0x0010, 0x4000), // PatientComments
    Tag(0x0020, 0x000D), // StudyInstanceUID
    Tag(0x0020, 0x0010), // StudyID
    Tag(0x0032, 0x1032), // RequestingPhysician
    Tag(0x0032, 0x1060), // RequestedProcedureDescription
    Tag(0x0038, 0x0010), // AdmissionID
    Tag(0x0038, 0x0014), // IssuerOfAdmissionIDSequence
];

/// Series-level attributes (returned by QIDO-RS at series level).
pub const SERIES_LEVEL: &[Tag] = &[
    Tag(0x0008, 0x0021), // SeriesDate
    Tag(0x0008, 0x0031), // SeriesTime
    Tag(0x0008, 0x0060), // Modality
    Tag(0x0008, 0x0070), // Manufacturer
    Tag(0x0008, 0x103E), // SeriesDescription
    Tag(0x0008, 0x1010), // StationName
    Tag(0x0008, 0x1040), // InstitutionalDepartmentName
    Tag(0x0008, 0x1050), // PerformingPhysicianName
    Tag(0x0008, 0x1070), // OperatorsName
    Tag(0x0008, 0x1090), // ManufacturerModelName
    Tag(0x0018, 0x0015), // BodyPartExamined
    Tag(0x0018, 0x1030), // ProtocolName
    Tag(0x0018, 0x5100), // PatientPosition
    Tag(0x0020, 0x000E), // SeriesInstanceUID
    Tag(0x0020, 0x0011), // SeriesNumber
    Tag(0x0020, 0x0052), // FrameOfReferenceUID
    Tag(0x0020, 0x0060), // Laterality
    Tag(0x0040, 0x0244), // PerformedProcedureStepStartDate
    Tag(0x0040, 0x0245), // PerformedProcedureStepStartTime
    Tag(0x0040, 0x0253), // PerformedProcedureStepID
    Tag(0x0040, 0x0254), // PerformedProcedureStepDescription
    Tag(0x0040, 0x0275), // RequestAttributesSequence
];

/// Instance-level attributes kept in the catalog row for QIDO-RS (the rest
/// of the instance is in its metadata).
pub const INSTANCE_LEVEL: &[Tag] = &[
    Tag(0x0008, 0x0008), // ImageType
    Tag(0x0008, 0x0016), // SOPClassUID
    Tag(0x0008, 0x0018), // SOPInstanceUID
    Tag(0x0008, 0x0023), // ContentDate
    Tag(0x0008, 0x0033), // ContentTime
    Tag(0x0008, 0x002A), // AcquisitionDateTime
    Tag(0x0020, 0x0013), // InstanceNumber
    Tag(0x0020, 0x0032), // ImagePositionPatient
    Tag(0x0020, 0x0037), // ImageOrientationPatient
    Tag(0x0028, 0x0002), // SamplesPerPixel
    Tag(0x0028, 0x0004), // PhotometricInterpretation
    Tag(0x0028, 0x0008), // NumberOfFrames
    Tag(0x0028, 0x0010), // Rows
    Tag(0x0028, 0x0011), // Columns
    Tag(0x0028, 0x0100), // BitsAllocated
    Tag(0x0040, 0xA043), // ConceptNameCodeSequence
    Tag(0x0040, 0xA491), // CompletionFlag
    Tag(0x0040, 0xA493), // VerificationFlag
    Tag(0x0042, 0x0010), // DocumentTitle
];

fn text(ds: &DataSet, tag: Tag, cs: &CharacterSet) -> Option<String> {
    let raw = ds.bytes(tag)?;
    let s = cs.decode(raw);
    let first = s.split('\\').next().unwrap_or("").trim();
    if first.is_empty() { None } else { Some(first.to_string()) }
}

fn int(ds: &DataSet, tag: Tag) -> Option<i64> {
    ds.ascii(tag)?.trim().parse::<f64>().ok().filter(|f| f.is_finite()).map(|f| f as i64)
}

fn uid(ds: &DataSet, tag: Tag, name: &'static str, tag_s: &'static str) -> Result<String, AttrError> {
    let v = ds.ascii(tag).ok_or(AttrError::Missing { name, tag: tag_s })?;
    let v = yunying_util::uid::trim_padding(&v).to_string();
    yunying_util::uid::validate_lenient(&v)
        .map_err(|e| AttrError::BadUid { name, value: v.clone(), reason: e.to_string() })?;
    Ok(v)
}

/// The character set of an object's top-level data set.
pub fn charset_of(ds: &DataSet, fallback: &'static encoding_rs::Encoding) -> CharacterSet {
    CharacterSet::from_specific_character_set(ds.bytes(Tag(0x0008, 0x0005)), fallback)
}

/// Extracts and validates the indexed attributes. The four identifying UIDs
/// are required; everything else is optional, as real objects lack a lot.
pub fn extract(obj: &ParsedObject, cs: &CharacterSet) -> Result<InstanceAttrs, AttrError> {
    let ds = &obj.dataset;
    let be = obj.encoding.big_endian;
    let sop_class_uid = uid(ds, Tag(0x0008, 0x0016), "SOPClassUID", "(0008,0016)")
        .or_else(|e| obj.meta.media_storage_sop_class_uid.clone().ok_or(e))?;
    let sop_instance_uid = uid(ds, Tag(0x0008, 0x0018), "SOPInstanceUID", "(0008,0018)")?;
    let study_instance_uid = uid(ds, Tag(0x0020, 0x000D), "StudyInstanceUID", "(0020,000D)")?;
    let series_instance_uid = uid(ds, Tag(0x0020, 0x000E), "SeriesInstanceUID", "(0020,000E)")?;
    let u32v = |t: Tag| ds.uint(t, be).and_then(|v| u32::try_from(v).ok());
    Ok(InstanceAttrs {
        sop_class_uid,
        sop_instance_uid,
        study_instance_uid,
        series_instance_uid,
        transfer_syntax: obj.meta.transfer_syntax.clone(),
        patient_name: ds.bytes(Tag(0x0010, 0x0010)).map(|b| cs.decode(b)).map(|s| {
            s.split('\\').next().unwrap_or("").trim().to_string()
        }).filter(|s| !s.is_empty()),
        patient_id: text(ds, Tag(0x0010, 0x0020), cs),
        issuer_of_patient_id: text(ds, Tag(0x0010, 0x0021), cs),
        patient_birth_date: ds.ascii(Tag(0x0010, 0x0030)),
        patient_sex: ds.ascii(Tag(0x0010, 0x0040)).map(|s| s.to_ascii_uppercase()),
        study_date: ds.ascii(Tag(0x0008, 0x0020)),
        study_time: ds.ascii(Tag(0x0008, 0x0030)),
        accession_number: text(ds, Tag(0x0008, 0x0050), cs),
        study_id: text(ds, Tag(0x0020, 0x0010), cs),
        study_description: text(ds, Tag(0x0008, 0x1030), cs),
        referring_physician_name: text(ds, Tag(0x0008, 0x0090), cs),
        institution_name: text(ds, Tag(0x0008, 0x0080), cs),
        admission_id: text(ds, Tag(0x0038, 0x0010), cs),
        modality: ds.ascii(Tag(0x0008, 0x0060)).map(|s| s.to_ascii_uppercase()),
        series_number: int(ds, Tag(0x0020, 0x0011)),
        series_description: text(ds, Tag(0x0008, 0x103E), cs),
        body_part_examined: ds.ascii(Tag(0x0018, 0x0015)),
        series_date: ds.ascii(Tag(0x0008, 0x0021)),
        series_time: ds.ascii(Tag(0x0008, 0x0031)),
        station_name: text(ds, Tag(0x0008, 0x1010), cs),
        instance_number: int(ds, Tag(0x0020, 0x0013)),
        rows: u32v(Tag(0x0028, 0x0010)),
        columns: u32v(Tag(0x0028, 0x0011)),
        bits_allocated: u32v(Tag(0x0028, 0x0100)),
        number_of_frames: ds.ascii(Tag(0x0028, 0x0008)).and_then(|s| s.trim().parse().ok()),
        content_date: ds.ascii(Tag(0x0008, 0x0023)),
        content_time: ds.ascii(Tag(0x0008, 0x0033)),
    })
}

/// The subset of a data set made of the given tags.
pub fn subset(ds: &DataSet, tags: &[Tag]) -> DataSet {
    let elements: Vec<Element> = ds
        .elements
        .iter()
        .filter(|e| tags.contains(&e.tag) || e.tag == Tag(0x0008, 0x0005))
        .cloned()
        .collect();
    DataSet { elements }
}

/// DICOM JSON of one query level's attributes (no bulk data).
pub fn level_json(obj: &ParsedObject, cs: &CharacterSet, tags: &[Tag]) -> Map<String, Json> {
    let sub = subset(&obj.dataset, tags);
    let mut m = to_json(
        &sub,
        &JsonOptions { charset: cs, big_endian: obj.encoding.big_endian, inline_binary_limit: 0, bulk_uri: None },
    );
    m.remove("00080005");
    m
}

/// Splits a decoded PN value into its three component groups.
pub fn person_name_groups(pn: &str) -> [String; 3] {
    let mut it = pn.split('=');
    let mut g = || it.next().unwrap_or("").trim().to_string();
    [g(), g(), g()]
}

/// A VR-aware helper for callers that build identifiers: whether a VR is text.
pub fn is_text_vr(vr: VR) -> bool {
    !matches!(
        vr,
        VR::OB | VR::OD | VR::OF | VR::OL | VR::OV | VR::OW | VR::UN | VR::SQ | VR::US | VR::SS | VR::UL | VR::SL
            | VR::FL | VR::FD | VR::SV | VR::UV | VR::AT
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{ParseOptions, parse_part10};
    use crate::write::ObjectBuilder;

    #[test]
    fn extracts_and_requires_uids() {
        let mut b = ObjectBuilder::new("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4", crate::ts::EXPLICIT_VR_LE);
        b.charset("GB18030");
        b.str(Tag(0x0010, 0x0010), VR::PN, "Li^Si=李^四");
        b.str(Tag(0x0010, 0x0020), VR::LO, "P001");
        b.str(Tag(0x0020, 0x000D), VR::UI, "1.2.3");
        b.str(Tag(0x0008, 0x0060), VR::CS, "CT");
        b.str(Tag(0x0020, 0x0013), VR::IS, "12");
        let bytes = b.to_bytes();
        let obj = parse_part10(&mut std::io::Cursor::new(&bytes), bytes.len() as u64, &ParseOptions::default())
            .unwrap();
        let cs = charset_of(&obj.dataset, encoding_rs::GB18030);
        // Series UID is missing.
        assert_eq!(
            extract(&obj, &cs),
            Err(AttrError::Missing { name: "SeriesInstanceUID", tag: "(0020,000E)" })
        );
        let mut b2 = b.clone();
        b2.str(Tag(0x0020, 0x000E), VR::UI, "1.2.3.1");
        let bytes = b2.to_bytes();
        let obj = parse_part10(&mut std::io::Cursor::new(&bytes), bytes.len() as u64, &ParseOptions::default())
            .unwrap();
        let a = extract(&obj, &cs).unwrap();
        assert_eq!(a.patient_name.as_deref(), Some("Li^Si=李^四"));
        assert_eq!(a.instance_number, Some(12));
        assert_eq!(a.modality.as_deref(), Some("CT"));
        let j = level_json(&obj, &cs, STUDY_LEVEL);
        assert_eq!(j["00100010"]["Value"][0]["Ideographic"], "李^四");
        assert!(!j.contains_key("00080060"));
        assert_eq!(person_name_groups("Li^Si=李^四"), ["Li^Si".to_string(), "李^四".into(), "".into()]);
    }
}
