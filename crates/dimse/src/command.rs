//! DIMSE command sets (PS3.7 §9.3, §10.3, Annex E): the group-0000 elements
//! of every message, encoded in implicit VR little endian as the standard
//! requires, decoded with every length checked.

use bytes::{BufMut, Bytes};

/// Command Field values.
pub mod field {
    pub const C_STORE_RQ: u16 = 0x0001;
    pub const C_STORE_RSP: u16 = 0x8001;
    pub const C_GET_RQ: u16 = 0x0010;
    pub const C_GET_RSP: u16 = 0x8010;
    pub const C_FIND_RQ: u16 = 0x0020;
    pub const C_FIND_RSP: u16 = 0x8020;
    pub const C_MOVE_RQ: u16 = 0x0021;
    pub const C_MOVE_RSP: u16 = 0x8021;
    pub const C_ECHO_RQ: u16 = 0x0030;
    pub const C_ECHO_RSP: u16 = 0x8030;
    pub const N_EVENT_REPORT_RQ: u16 = 0x0100;
    pub const N_EVENT_REPORT_RSP: u16 = 0x8100;
    pub const N_GET_RQ: u16 = 0x0110;
    pub const N_SET_RQ: u16 = 0x0120;
    pub const N_ACTION_RQ: u16 = 0x0130;
    pub const N_ACTION_RSP: u16 = 0x8130;
    pub const N_CREATE_RQ: u16 = 0x0140;
    pub const N_DELETE_RQ: u16 = 0x0150;
    pub const C_CANCEL_RQ: u16 = 0x0FFF;

    /// A readable name, for logs.
    pub fn name(f: u16) -> &'static str {
        match f {
            C_STORE_RQ => "C-STORE-RQ",
            C_STORE_RSP => "C-STORE-RSP",
            C_GET_RQ => "C-GET-RQ",
            C_GET_RSP => "C-GET-RSP",
            C_FIND_RQ => "C-FIND-RQ",
            C_FIND_RSP => "C-FIND-RSP",
            C_MOVE_RQ => "C-MOVE-RQ",
            C_MOVE_RSP => "C-MOVE-RSP",
            C_ECHO_RQ => "C-ECHO-RQ",
            C_ECHO_RSP => "C-ECHO-RSP",
            N_EVENT_REPORT_RQ => "N-EVENT-REPORT-RQ",
            N_EVENT_REPORT_RSP => "N-EVENT-REPORT-RSP",
            N_GET_RQ => "N-GET-RQ",
            N_SET_RQ => "N-SET-RQ",
            N_ACTION_RQ => "N-ACTION-RQ",
            N_ACTION_RSP => "N-ACTION-RSP",
            N_CREATE_RQ => "N-CREATE-RQ",
            N_DELETE_RQ => "N-DELETE-RQ",
            C_CANCEL_RQ => "C-CANCEL-RQ",
            _ => "unknown command",
        }
    }
}

/// Command Data Set Type value meaning "no data set follows".
pub const NO_DATA_SET: u16 = 0x0101;

/// Priority values.
pub mod priority {
    pub const MEDIUM: u16 = 0x0000;
    pub const HIGH: u16 = 0x0001;
    pub const LOW: u16 = 0x0002;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed command set: {0}")]
pub struct CommandError(pub String);

/// A command set. Fields absent from a message are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command {
    pub command_field: u16,
    pub affected_sop_class_uid: Option<String>,
    pub requested_sop_class_uid: Option<String>,
    pub message_id: Option<u16>,
    pub message_id_being_responded_to: Option<u16>,
    pub move_destination: Option<String>,
    pub priority: Option<u16>,
    /// `NO_DATA_SET` (0x0101) when no data set follows.
    pub data_set_type: u16,
    pub status: Option<u16>,
    pub offending_element: Option<Vec<u32>>,
    pub error_comment: Option<String>,
    pub error_id: Option<u16>,
    pub affected_sop_instance_uid: Option<String>,
    pub requested_sop_instance_uid: Option<String>,
    pub event_type_id: Option<u16>,
    pub action_type_id: Option<u16>,
    pub remaining: Option<u16>,
    pub completed: Option<u16>,
    pub failed: Option<u16>,
    pub warning: Option<u16>,
    pub move_originator_ae: Option<String>,
    pub move_originator_message_id: Option<u16>,
}

/// Largest command set we accept (they are a few hundred bytes).
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;

impl Command {
    /// A command of this field, with no data set.
    pub fn new(command_field: u16) -> Command {
        Command { command_field, data_set_type: NO_DATA_SET, ..Default::default() }
    }

    pub fn has_data_set(&self) -> bool {
        self.data_set_type != NO_DATA_SET
    }

    /// True for response commands (high bit of the field).
    pub fn is_response(&self) -> bool {
        self.command_field & 0x8000 != 0
    }

    /// A response to `rq` with this status (and the same SOP class/instance).
    pub fn response_to(rq: &Command, rsp_field: u16, status: u16) -> Command {
        Command {
            command_field: rsp_field,
            affected_sop_class_uid: rq.affected_sop_class_uid.clone().or_else(|| rq.requested_sop_class_uid.clone()),
            affected_sop_instance_uid: rq
                .affected_sop_instance_uid
                .clone()
                .or_else(|| rq.requested_sop_instance_uid.clone()),
            message_id_being_responded_to: rq.message_id,
            data_set_type: NO_DATA_SET,
            status: Some(status),
            ..Default::default()
        }
    }

    /// Encodes in implicit VR little endian, group length first.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(256);
        let uid = |b: &mut Vec<u8>, el: u16, v: &Option<String>| {
            if let Some(v) = v {
                put(b, el, v.as_bytes(), 0);
            }
        };
        uid(&mut body, 0x0002, &self.affected_sop_class_uid);
        uid(&mut body, 0x0003, &self.requested_sop_class_uid);
        put_u16(&mut body, 0x0100, Some(self.command_field));
        put_u16(&mut body, 0x0110, self.message_id);
        put_u16(&mut body, 0x0120, self.message_id_being_responded_to);
        if let Some(d) = &self.move_destination {
            put(&mut body, 0x0600, d.as_bytes(), b' ');
        }
        put_u16(&mut body, 0x0700, self.priority);
        put_u16(&mut body, 0x0800, Some(self.data_set_type));
        put_u16(&mut body, 0x0900, self.status);
        if let Some(tags) = &self.offending_element {
            let mut v = Vec::with_capacity(tags.len() * 4);
            for t in tags {
                v.put_u16_le((t >> 16) as u16);
                v.put_u16_le(*t as u16);
            }
            put(&mut body, 0x0901, &v, 0);
        }
        if let Some(c) = &self.error_comment {
            let c: String = c.chars().filter(|c| c.is_ascii() && !c.is_ascii_control()).take(64).collect();
            put(&mut body, 0x0902, c.as_bytes(), b' ');
        }
        put_u16(&mut body, 0x0903, self.error_id);
        let uid2 = |b: &mut Vec<u8>, el: u16, v: &Option<String>| {
            if let Some(v) = v {
                put(b, el, v.as_bytes(), 0);
            }
        };
        uid2(&mut body, 0x1000, &self.affected_sop_instance_uid);
        uid2(&mut body, 0x1001, &self.requested_sop_instance_uid);
        put_u16(&mut body, 0x1002, self.event_type_id);
        put_u16(&mut body, 0x1008, self.action_type_id);
        put_u16(&mut body, 0x1020, self.remaining);
        put_u16(&mut body, 0x1021, self.completed);
        put_u16(&mut body, 0x1022, self.failed);
        put_u16(&mut body, 0x1023, self.warning);
        if let Some(ae) = &self.move_originator_ae {
            put(&mut body, 0x1030, ae.as_bytes(), b' ');
        }
        put_u16(&mut body, 0x1031, self.move_originator_message_id);
        let mut out = Vec::with_capacity(body.len() + 12);
        out.put_u16_le(0x0000);
        out.put_u16_le(0x0000);
        out.put_u32_le(4);
        out.put_u32_le(body.len() as u32);
        out.extend_from_slice(&body);
        out
    }

    /// Decodes a command set; unknown group-0000 elements are ignored.
    pub fn decode(bytes: &[u8]) -> Result<Command, CommandError> {
        if bytes.len() > MAX_COMMAND_BYTES {
            return Err(CommandError(format!("{} bytes is too large for a command set", bytes.len())));
        }
        let mut c = Command { data_set_type: NO_DATA_SET, ..Default::default() };
        let mut have_field = false;
        let mut pos = 0usize;
        while pos < bytes.len() {
            if bytes.len() - pos < 8 {
                return Err(CommandError("truncated element header".into()));
            }
            let group = u16::from_le_bytes([bytes[pos], bytes[pos + 1]]);
            let element = u16::from_le_bytes([bytes[pos + 2], bytes[pos + 3]]);
            let len = u32::from_le_bytes([bytes[pos + 4], bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]]) as usize;
            pos += 8;
            if group != 0x0000 {
                return Err(CommandError(format!("element ({group:04X},{element:04X}) outside group 0000")));
            }
            if len > bytes.len() - pos {
                return Err(CommandError(format!(
                    "element (0000,{element:04X}) declares {len} bytes, {} remain",
                    bytes.len() - pos
                )));
            }
            let v = &bytes[pos..pos + len];
            pos += len;
            let us = || -> Result<u16, CommandError> {
                if v.len() != 2 {
                    return Err(CommandError(format!("(0000,{element:04X}) should be 2 bytes, is {}", v.len())));
                }
                Ok(u16::from_le_bytes([v[0], v[1]]))
            };
            let s = || -> Result<String, CommandError> {
                let t = std::str::from_utf8(v)
                    .map_err(|_| CommandError(format!("(0000,{element:04X}) is not text")))?;
                Ok(t.trim_end_matches(['\0', ' ']).trim_start_matches(' ').to_string())
            };
            match element {
                0x0002 => c.affected_sop_class_uid = Some(s()?),
                0x0003 => c.requested_sop_class_uid = Some(s()?),
                0x0100 => {
                    c.command_field = us()?;
                    have_field = true;
                }
                0x0110 => c.message_id = Some(us()?),
                0x0120 => c.message_id_being_responded_to = Some(us()?),
                0x0600 => c.move_destination = Some(s()?),
                0x0700 => c.priority = Some(us()?),
                0x0800 => c.data_set_type = us()?,
                0x0900 => c.status = Some(us()?),
                0x0901 => {
                    c.offending_element = Some(
                        v.chunks_exact(4)
                            .map(|t| ((u16::from_le_bytes([t[0], t[1]]) as u32) << 16) | u16::from_le_bytes([t[2], t[3]]) as u32)
                            .collect(),
                    )
                }
                0x0902 => c.error_comment = Some(String::from_utf8_lossy(v).trim_end_matches(['\0', ' ']).to_string()),
                0x0903 => c.error_id = Some(us()?),
                0x1000 => c.affected_sop_instance_uid = Some(s()?),
                0x1001 => c.requested_sop_instance_uid = Some(s()?),
                0x1002 => c.event_type_id = Some(us()?),
                0x1008 => c.action_type_id = Some(us()?),
                0x1020 => c.remaining = Some(us()?),
                0x1021 => c.completed = Some(us()?),
                0x1022 => c.failed = Some(us()?),
                0x1023 => c.warning = Some(us()?),
                0x1030 => c.move_originator_ae = Some(s()?),
                0x1031 => c.move_originator_message_id = Some(us()?),
                _ => {}
            }
        }
        if !have_field {
            return Err(CommandError("no Command Field (0000,0100)".into()));
        }
        Ok(c)
    }
}

fn put(out: &mut Vec<u8>, element: u16, value: &[u8], pad: u8) {
    let padded = value.len() % 2 == 1;
    out.put_u16_le(0x0000);
    out.put_u16_le(element);
    out.put_u32_le((value.len() + padded as usize) as u32);
    out.extend_from_slice(value);
    if padded {
        out.put_u8(pad);
    }
}

fn put_u16(out: &mut Vec<u8>, element: u16, v: Option<u16>) {
    if let Some(v) = v {
        put(out, element, &v.to_le_bytes(), 0);
    }
}

/// A command set plus, when one follows, the whole data set (for small data
/// sets: identifiers, event reports; C-STORE data sets are streamed instead).
#[derive(Debug, Clone)]
pub struct Message {
    pub context_id: u8,
    pub command: Command,
    pub data: Option<Bytes>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let c = Command {
            command_field: field::C_MOVE_RSP,
            affected_sop_class_uid: Some("1.2.840.10008.5.1.4.1.2.2.2".into()),
            message_id_being_responded_to: Some(7),
            data_set_type: NO_DATA_SET,
            status: Some(0xFF00),
            remaining: Some(3),
            completed: Some(1),
            failed: Some(0),
            warning: Some(0),
            error_comment: Some("odd".into()),
            offending_element: Some(vec![0x00100010]),
            move_destination: Some("DEST".into()),
            ..Default::default()
        };
        let bytes = c.encode();
        assert_eq!(bytes.len() % 2, 0);
        assert_eq!(Command::decode(&bytes).unwrap(), c);
    }

    #[test]
    fn rejects_truncation_and_foreign_groups() {
        let bytes = Command::new(field::C_ECHO_RQ).encode();
        assert!(Command::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut other = bytes.clone();
        other[12] = 8; // second element's group
        assert!(Command::decode(&other).is_err());
        assert!(Command::decode(&[]).is_err());
    }
}
