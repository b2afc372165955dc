//! The UIDs DIMSE services are addressed by, which abstract syntaxes are
//! storage SOP classes, and the transfer syntax policy: which syntax the
//! archive chooses among those a peer proposes.
//!
//! The choice is ours, not the requestor's order (dicom-ul takes the first
//! proposed syntax it knows): for objects we store, lossless compression is
//! preferred when offered, then native encodings; a lossy syntax is chosen
//! only when nothing else is proposed (the sender's data is then already
//! lossy, and accepting it loses nothing more).

use dicom_core::dictionary::{UidDictionary, UidType};
use dicom_dictionary_std::StandardSopClassDictionary;
use yunying_dicom::ts;

pub const VERIFICATION: &str = "1.2.840.10008.1.1";
pub const PATIENT_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.1.1";
pub const PATIENT_ROOT_MOVE: &str = "1.2.840.10008.5.1.4.1.2.1.2";
pub const PATIENT_ROOT_GET: &str = "1.2.840.10008.5.1.4.1.2.1.3";
pub const STUDY_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.2.1";
pub const STUDY_ROOT_MOVE: &str = "1.2.840.10008.5.1.4.1.2.2.2";
pub const STUDY_ROOT_GET: &str = "1.2.840.10008.5.1.4.1.2.2.3";
pub const STORAGE_COMMITMENT_PUSH: &str = "1.2.840.10008.1.20.1";
/// The well-known instance of the Storage Commitment Push Model.
pub const STORAGE_COMMITMENT_PUSH_INSTANCE: &str = "1.2.840.10008.1.20.1.1";

/// Query/retrieve information models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryModel {
    PatientRoot,
    StudyRoot,
}

/// The DIMSE service an abstract syntax names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Verification,
    Storage,
    Find(QueryModel),
    Move(QueryModel),
    Get(QueryModel),
    StorageCommitment,
}

/// The service of a standard abstract syntax, or `Storage` for unknown
/// ones when `unknown_is_storage` (private SOP classes of modalities).
pub fn service_of(abstract_syntax: &str, unknown_is_storage: bool) -> Option<Service> {
    Some(match abstract_syntax {
        VERIFICATION => Service::Verification,
        PATIENT_ROOT_FIND => Service::Find(QueryModel::PatientRoot),
        STUDY_ROOT_FIND => Service::Find(QueryModel::StudyRoot),
        PATIENT_ROOT_MOVE => Service::Move(QueryModel::PatientRoot),
        STUDY_ROOT_MOVE => Service::Move(QueryModel::StudyRoot),
        PATIENT_ROOT_GET => Service::Get(QueryModel::PatientRoot),
        STUDY_ROOT_GET => Service::Get(QueryModel::StudyRoot),
        STORAGE_COMMITMENT_PUSH => Service::StorageCommitment,
        other => match StandardSopClassDictionary.by_uid(other) {
            Some(e) if e.r#type == UidType::SopClass && is_storage_name(e.name) => Service::Storage,
            Some(_) => return None,
            None if unknown_is_storage && yunying_util::uid::validate_lenient(other).is_ok() => Service::Storage,
            None => return None,
        },
    })
}

fn is_storage_name(name: &str) -> bool {
    name.contains("Storage") && !name.contains("Commitment") && !name.contains("Storage Management")
}

/// The standard name of a SOP class, for logs and documents.
pub fn sop_class_name(uid: &str) -> Option<&'static str> {
    StandardSopClassDictionary.by_uid(uid).map(|e| e.name)
}

/// Transfer syntaxes that lose nothing relative to the original pixels.
const LOSSLESS_COMPRESSED: &[&str] = &[
    "1.2.840.10008.1.2.4.202", // HTJ2K RPCL lossless
    "1.2.840.10008.1.2.4.201", // HTJ2K lossless
    "1.2.840.10008.1.2.4.90",  // JPEG 2000 lossless
    "1.2.840.10008.1.2.4.80",  // JPEG-LS lossless
    "1.2.840.10008.1.2.4.70",  // JPEG lossless SV1
    "1.2.840.10008.1.2.4.57",  // JPEG lossless
    "1.2.840.10008.1.2.4.92",  // JPEG 2000 part 2 lossless
    "1.2.840.10008.1.2.4.110", // JPEG XL lossless
    "1.2.840.10008.1.2.5",     // RLE lossless
];

const NATIVE: &[&str] = &[
    ts::EXPLICIT_VR_LE,
    ts::IMPLICIT_VR_LE,
    ts::ENCAPSULATED_UNCOMPRESSED,
    ts::DEFLATED_EXPLICIT_VR_LE,
    ts::EXPLICIT_VR_BE,
];

/// Rank of a transfer syntax for storage (lower is better), or `None` for
/// syntaxes the archive cannot store faithfully (unknown to it).
pub fn storage_rank(ts_uid: &str) -> Option<usize> {
    if let Some(i) = LOSSLESS_COMPRESSED.iter().position(|t| *t == ts_uid) {
        return Some(i);
    }
    if let Some(i) = NATIVE.iter().position(|t| *t == ts_uid) {
        return Some(100 + i);
    }
    // Lossy or video syntaxes the archive knows: stored as received.
    ts::known(ts_uid).map(|_| 200)
}

/// Rank for services whose data sets are identifiers and reports (C-FIND,
/// C-MOVE, C-GET, storage commitment, verification): native little endian only.
pub fn control_rank(ts_uid: &str) -> Option<usize> {
    match ts_uid {
        ts::EXPLICIT_VR_LE => Some(0),
        ts::IMPLICIT_VR_LE => Some(1),
        _ => None,
    }
}

/// Rank of a transfer syntax for a storage context on which *we* will send
/// (the return path of a C-GET): native little endian first, since any
/// natively stored instance can be converted to it without loss; then the
/// compressed syntaxes, usable for instances stored in them.
pub fn sending_rank(ts_uid: &str) -> Option<usize> {
    match ts_uid {
        ts::EXPLICIT_VR_LE => Some(0),
        ts::IMPLICIT_VR_LE => Some(1),
        other => storage_rank(other).map(|r| r + 10),
    }
}

/// The transfer syntax we pick to send on, among `proposed`.
pub fn choose_for_sending(proposed: &[String]) -> Option<String> {
    proposed
        .iter()
        .enumerate()
        .filter_map(|(i, t)| sending_rank(t).map(|r| (r, i, t)))
        .min()
        .map(|(_, _, t)| t.clone())
}

/// The transfer syntax the archive picks for `service` among `proposed`.
pub fn choose(service: Service, proposed: &[String]) -> Option<String> {
    let rank = |t: &str| match service {
        Service::Storage => storage_rank(t),
        _ => control_rank(t),
    };
    proposed
        .iter()
        .enumerate()
        .filter_map(|(i, t)| rank(t).map(|r| (r, i, t)))
        .min()
        .map(|(_, _, t)| t.clone())
}

/// Storage SOP classes proposed when we cannot know in advance what a peer
/// will send (C-GET from another PACS): the classes real departments
/// produce, within the 127 contexts an association can carry besides the
/// retrieve context itself.
pub const COMMON_STORAGE_CLASSES: &[&str] = &[
    "1.2.840.10008.5.1.4.1.1.1",       // CR
    "1.2.840.10008.5.1.4.1.1.1.1",     // DX for presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",   // DX for processing
    "1.2.840.10008.5.1.4.1.1.1.2",     // mammography for presentation
    "1.2.840.10008.5.1.4.1.1.1.2.1",   // mammography for processing
    "1.2.840.10008.5.1.4.1.1.1.3",     // intra-oral
    "1.2.840.10008.5.1.4.1.1.2",       // CT
    "1.2.840.10008.5.1.4.1.1.2.1",     // enhanced CT
    "1.2.840.10008.5.1.4.1.1.2.2",     // legacy converted enhanced CT
    "1.2.840.10008.5.1.4.1.1.3.1",     // US multi-frame
    "1.2.840.10008.5.1.4.1.1.4",       // MR
    "1.2.840.10008.5.1.4.1.1.4.1",     // enhanced MR
    "1.2.840.10008.5.1.4.1.1.4.2",     // MR spectroscopy
    "1.2.840.10008.5.1.4.1.1.4.3",     // enhanced MR colour
    "1.2.840.10008.5.1.4.1.1.6.1",     // US
    "1.2.840.10008.5.1.4.1.1.6.2",     // enhanced US volume
    "1.2.840.10008.5.1.4.1.1.7",       // secondary capture
    "1.2.840.10008.5.1.4.1.1.7.1",     // multi-frame single bit SC
    "1.2.840.10008.5.1.4.1.1.7.2",     // multi-frame grayscale byte SC
    "1.2.840.10008.5.1.4.1.1.7.3",     // multi-frame grayscale word SC
    "1.2.840.10008.5.1.4.1.1.7.4",     // multi-frame true colour SC
    "1.2.840.10008.5.1.4.1.1.9.1.1",   // 12-lead ECG
    "1.2.840.10008.5.1.4.1.1.9.1.2",   // general ECG
    "1.2.840.10008.5.1.4.1.1.9.1.3",   // ambulatory ECG
    "1.2.840.10008.5.1.4.1.1.9.2.1",   // haemodynamic waveform
    "1.2.840.10008.5.1.4.1.1.9.4.1",   // basic voice audio
    "1.2.840.10008.5.1.4.1.1.11.1",    // grayscale softcopy presentation state
    "1.2.840.10008.5.1.4.1.1.11.2",    // colour softcopy presentation state
    "1.2.840.10008.5.1.4.1.1.12.1",    // XA
    "1.2.840.10008.5.1.4.1.1.12.1.1",  // enhanced XA
    "1.2.840.10008.5.1.4.1.1.12.2",    // XRF
    "1.2.840.10008.5.1.4.1.1.13.1.1",  // X-ray 3D angiographic
    "1.2.840.10008.5.1.4.1.1.13.1.3",  // breast tomosynthesis
    "1.2.840.10008.5.1.4.1.1.20",      // NM
    "1.2.840.10008.5.1.4.1.1.30",      // parametric map
    "1.2.840.10008.5.1.4.1.1.66",      // raw data
    "1.2.840.10008.5.1.4.1.1.66.1",    // spatial registration
    "1.2.840.10008.5.1.4.1.1.66.4",    // segmentation
    "1.2.840.10008.5.1.4.1.1.67",      // real world value mapping
    "1.2.840.10008.5.1.4.1.1.77.1.1",  // VL endoscopic
    "1.2.840.10008.5.1.4.1.1.77.1.1.1", // video endoscopic
    "1.2.840.10008.5.1.4.1.1.77.1.2",  // VL microscopic
    "1.2.840.10008.5.1.4.1.1.77.1.4",  // VL photographic
    "1.2.840.10008.5.1.4.1.1.77.1.4.1", // video photographic
    "1.2.840.10008.5.1.4.1.1.77.1.5.1", // ophthalmic photography 8 bit
    "1.2.840.10008.5.1.4.1.1.77.1.5.4", // ophthalmic tomography
    "1.2.840.10008.5.1.4.1.1.77.1.6",  // VL whole slide microscopy
    "1.2.840.10008.5.1.4.1.1.88.11",   // basic text SR
    "1.2.840.10008.5.1.4.1.1.88.22",   // enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",   // comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.34",   // comprehensive 3D SR
    "1.2.840.10008.5.1.4.1.1.88.50",   // mammography CAD SR
    "1.2.840.10008.5.1.4.1.1.88.59",   // key object selection
    "1.2.840.10008.5.1.4.1.1.88.67",   // X-ray radiation dose SR
    "1.2.840.10008.5.1.4.1.1.104.1",   // encapsulated PDF
    "1.2.840.10008.5.1.4.1.1.104.2",   // encapsulated CDA
    "1.2.840.10008.5.1.4.1.1.128",     // PET
    "1.2.840.10008.5.1.4.1.1.130",     // enhanced PET
    "1.2.840.10008.5.1.4.1.1.481.1",   // RT image
    "1.2.840.10008.5.1.4.1.1.481.2",   // RT dose
    "1.2.840.10008.5.1.4.1.1.481.3",   // RT structure set
    "1.2.840.10008.5.1.4.1.1.481.5",   // RT plan
];

/// Transfer syntaxes we can receive objects in, best first (for proposals
/// where we are the storage SCP: C-GET).
pub fn receivable_transfer_syntaxes() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = ts::KNOWN.iter().map(|t| t.uid).filter(|t| storage_rank(t).is_some()).collect();
    all.sort_by_key(|t| storage_rank(t).unwrap_or(usize::MAX));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn services() {
        assert_eq!(service_of("1.2.840.10008.5.1.4.1.1.2", false), Some(Service::Storage));
        assert_eq!(service_of("1.2.840.10008.5.1.4.1.1.104.1", false), Some(Service::Storage)); // PDF
        assert_eq!(service_of(STORAGE_COMMITMENT_PUSH, false), Some(Service::StorageCommitment));
        assert_eq!(service_of("1.2.840.10008.5.1.4.31", false), None); // worklist find: not (yet) served
        assert_eq!(service_of("1.3.12.2.1107.5.9.1", true), Some(Service::Storage));
        assert_eq!(service_of("1.3.12.2.1107.5.9.1", false), None);
        assert_eq!(service_of("not a uid", true), None);
    }

    #[test]
    fn policy_is_ours_not_the_requestors() {
        let offered = v(&["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4.80"]);
        assert_eq!(choose(Service::Storage, &offered).as_deref(), Some("1.2.840.10008.1.2.4.80"));
        let offered = v(&["1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2"]);
        assert_eq!(choose(Service::Storage, &offered).as_deref(), Some("1.2.840.10008.1.2"));
        let offered = v(&["1.2.840.10008.1.2.4.50"]);
        assert_eq!(choose(Service::Storage, &offered).as_deref(), Some("1.2.840.10008.1.2.4.50"));
        assert_eq!(choose(Service::Storage, &v(&["1.2.3.4.5.6"])), None);
        let offered = v(&["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"]);
        assert_eq!(choose(Service::Find(QueryModel::StudyRoot), &offered).as_deref(), Some("1.2.840.10008.1.2.1"));
        assert_eq!(choose(Service::Verification, &v(&["1.2.840.10008.1.2.2"])), None);
        // Sending (C-GET return path): native first.
        let offered = v(&["1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2", "1.2.840.10008.1.2.1"]);
        assert_eq!(choose_for_sending(&offered).as_deref(), Some("1.2.840.10008.1.2.1"));
        assert_eq!(choose_for_sending(&v(&["1.2.840.10008.1.2.4.70"])).as_deref(), Some("1.2.840.10008.1.2.4.70"));
    }
}
