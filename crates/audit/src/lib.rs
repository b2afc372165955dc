//! The audit trail's vocabulary: what an audit event records, how events
//! are sealed into a keyed hash chain and verified, and how they are
//! exported (DICOM PS3.15 audit messages, FHIR AuditEvent, RFC 5424 syslog).
