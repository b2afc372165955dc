//! DIMSE status codes (PS3.7 Annex C, PS3.4 service classes) and how they
//! are classified.

pub const SUCCESS: u16 = 0x0000;
pub const PENDING: u16 = 0xFF00;
/// Pending: some optional keys were not supported (C-FIND).
pub const PENDING_OPTIONAL_KEYS: u16 = 0xFF01;
pub const CANCEL: u16 = 0xFE00;
/// Warning: sub-operations complete, one or more failures (C-MOVE, C-GET).
pub const SUB_OPERATIONS_FAILED: u16 = 0xB000;
/// Warning: coercion of data elements (C-STORE).
pub const COERCION: u16 = 0xB000;
/// Warning: elements discarded (C-STORE).
pub const ELEMENTS_DISCARDED: u16 = 0xB006;
/// Warning: data set does not match SOP class (C-STORE).
pub const DATA_SET_DOES_NOT_MATCH_WARNING: u16 = 0xB007;
/// Refused: out of resources.
pub const OUT_OF_RESOURCES: u16 = 0xA700;
/// Refused: out of resources, unable to calculate number of matches (C-MOVE, C-GET).
pub const OUT_OF_RESOURCES_MATCHES: u16 = 0xA701;
/// Refused: out of resources, unable to perform sub-operations (C-MOVE, C-GET).
pub const OUT_OF_RESOURCES_SUB_OPERATIONS: u16 = 0xA702;
/// Refused: move destination unknown (C-MOVE).
pub const MOVE_DESTINATION_UNKNOWN: u16 = 0xA801;
/// Error: data set does not match SOP class / identifier does not match SOP class.
pub const DATA_SET_DOES_NOT_MATCH: u16 = 0xA900;
/// Error: cannot understand / unable to process.
pub const CANNOT_UNDERSTAND: u16 = 0xC000;
/// Refused: SOP class not supported.
pub const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
/// Failure: processing failure.
pub const PROCESSING_FAILURE: u16 = 0x0110;
/// Failure: no such SOP instance (storage commitment failure reason).
pub const NO_SUCH_OBJECT_INSTANCE: u16 = 0x0112;
/// Failure: unrecognised operation.
pub const UNRECOGNIZED_OPERATION: u16 = 0x0211;
/// Failure: no such action type (N-ACTION).
pub const NO_SUCH_ACTION_TYPE: u16 = 0x0123;
/// Failure: invalid argument value.
pub const INVALID_ARGUMENT_VALUE: u16 = 0x0115;
/// Refused: not authorized.
pub const NOT_AUTHORIZED: u16 = 0x0124;
/// Failure: duplicate invocation (message ID in use).
pub const DUPLICATE_INVOCATION: u16 = 0x0210;

/// The class of a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Success,
    Pending,
    Cancel,
    Warning,
    Failure,
}

pub fn class(status: u16) -> Class {
    match status {
        SUCCESS => Class::Success,
        0xFF00 | 0xFF01 => Class::Pending,
        CANCEL => Class::Cancel,
        0x0001 | 0x0107 | 0x0116 | 0xB000..=0xBFFF => Class::Warning,
        _ => Class::Failure,
    }
}
