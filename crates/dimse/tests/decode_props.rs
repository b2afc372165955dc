//! Property tests of the decoders that face the network: PDUs and DIMSE
//! command sets. Arbitrary and mutated input must give a value or an error,
//! never a panic; whatever we encode must decode to itself.

use bytes::Bytes;
use proptest::prelude::*;
use yunying_dimse::command::{Command, field};
use yunying_dimse::pdu::{
    self, Abort, AssociateAc, AssociateRj, AssociateRq, ContextResult, ExtendedNegotiation, Pdu, Pdv, ProposedContext,
    RoleSelection, UserIdentity, UserInfo,
};

fn uid() -> impl Strategy<Value = String> {
    "[1-9][0-9]{0,5}(\\.[1-9][0-9]{0,5}){1,8}"
}

fn ae() -> impl Strategy<Value = String> {
    "[A-Z][A-Z0-9_]{0,15}"
}

fn user_info() -> impl Strategy<Value = UserInfo> {
    (
        any::<u32>(),
        uid(),
        proptest::option::of("[A-Z0-9_]{1,16}"),
        proptest::option::of((any::<u16>(), any::<u16>())),
        proptest::collection::vec((uid(), any::<bool>(), any::<bool>()), 0..4),
        proptest::collection::vec((uid(), proptest::collection::vec(any::<u8>(), 0..8)), 0..3),
        proptest::option::of((1u8..6, any::<bool>(), "[a-z]{0,12}", "[a-z]{0,12}")),
    )
        .prop_map(|(max, class, version, async_ops, roles, ext, identity)| UserInfo {
            max_pdu_length: max,
            implementation_class_uid: class,
            implementation_version_name: version,
            async_ops,
            roles: roles.into_iter().map(|(sop_class, scu, scp)| RoleSelection { sop_class, scu, scp }).collect(),
            extended: ext
                .into_iter()
                .map(|(sop_class, info)| ExtendedNegotiation { sop_class, info: Bytes::from(info) })
                .collect(),
            common_extended: vec![],
            user_identity: identity.map(|(kind, positive, p, s)| UserIdentity {
                kind,
                positive_response_requested: positive,
                primary: Bytes::from(p),
                secondary: Bytes::from(s),
            }),
            user_identity_response: None,
        })
}

fn associate_rq() -> impl Strategy<Value = Pdu> {
    (
        ae(),
        ae(),
        proptest::collection::vec((uid(), proptest::collection::vec(uid(), 1..4)), 1..6),
        user_info(),
    )
        .prop_map(|(called, calling, pcs, user)| {
            Pdu::AssociateRq(AssociateRq {
                protocol_version: 1,
                called_ae: called,
                calling_ae: calling,
                application_context: pdu::APPLICATION_CONTEXT.into(),
                contexts: pcs
                    .into_iter()
                    .enumerate()
                    .map(|(i, (a, t))| ProposedContext { id: (2 * i + 1) as u8, abstract_syntax: a, transfer_syntaxes: t })
                    .collect(),
                user,
            })
        })
}

fn associate_ac() -> impl Strategy<Value = Pdu> {
    (ae(), ae(), proptest::collection::vec((0u8..5, uid()), 0..6), user_info()).prop_map(|(called, calling, pcs, user)| {
        Pdu::AssociateAc(AssociateAc {
            protocol_version: 1,
            called_ae: called,
            calling_ae: calling,
            application_context: pdu::APPLICATION_CONTEXT.into(),
            contexts: pcs
                .into_iter()
                .enumerate()
                .map(|(i, (result, ts))| ContextResult { id: (2 * i + 1) as u8, result, transfer_syntax: ts })
                .collect(),
            user,
        })
    })
}

fn other_pdu() -> impl Strategy<Value = Pdu> {
    prop_oneof![
        (1u8..3, 1u8..4, 0u8..8).prop_map(|(result, source, reason)| Pdu::AssociateRj(AssociateRj { result, source, reason })),
        Just(Pdu::ReleaseRq),
        Just(Pdu::ReleaseRp),
        (0u8..3, 0u8..7).prop_map(|(source, reason)| Pdu::Abort(Abort { source, reason })),
        proptest::collection::vec((1u8..255, any::<bool>(), any::<bool>(), proptest::collection::vec(any::<u8>(), 0..64)), 1..5)
            .prop_map(|pdvs| Pdu::PData(
                pdvs.into_iter()
                    .map(|(context_id, command, last, data)| Pdv { context_id, command, last, data: Bytes::from(data) })
                    .collect()
            )),
    ]
}

fn any_pdu() -> impl Strategy<Value = Pdu> {
    prop_oneof![associate_rq(), associate_ac(), other_pdu()]
}

fn decode_frame(bytes: &[u8]) -> Result<Pdu, pdu::PduError> {
    if bytes.len() < 6 {
        return Err(pdu::PduError::Malformed("short".into()));
    }
    pdu::decode(bytes[0], Bytes::copy_from_slice(&bytes[6..]))
}

fn command() -> impl Strategy<Value = Command> {
    (
        prop_oneof![
            Just(field::C_STORE_RQ),
            Just(field::C_FIND_RSP),
            Just(field::C_MOVE_RSP),
            Just(field::N_EVENT_REPORT_RQ),
            any::<u16>()
        ],
        proptest::option::of(uid()),
        proptest::option::of(uid()),
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u16>()),
        proptest::option::of(ae()),
        any::<bool>(),
        proptest::option::of(any::<u16>()),
        proptest::option::of((any::<u16>(), any::<u16>(), any::<u16>(), any::<u16>())),
    )
        .prop_map(|(f, class, instance, id, rsp_to, dest, data, status, counts)| {
            let mut c = Command::new(f);
            c.affected_sop_class_uid = class;
            c.affected_sop_instance_uid = instance;
            c.message_id = id;
            c.message_id_being_responded_to = rsp_to;
            c.move_destination = dest;
            c.data_set_type = if data { 0 } else { yunying_dimse::command::NO_DATA_SET };
            c.status = status;
            if let Some((r, co, fa, w)) = counts {
                c.remaining = Some(r);
                c.completed = Some(co);
                c.failed = Some(fa);
                c.warning = Some(w);
            }
            c
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn pdus_roundtrip(p in any_pdu()) {
        let bytes = pdu::encode(&p);
        prop_assert_eq!(decode_frame(&bytes).unwrap(), p);
    }

    #[test]
    fn arbitrary_pdu_bodies_never_panic(t in 0u8..9, body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = pdu::decode(t, Bytes::from(body));
    }

    #[test]
    fn mutated_pdus_never_panic(
        p in any_pdu(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = pdu::encode(&p);
        for (i, v) in flips {
            let at = i.index(bytes.len());
            bytes[at] = v;
        }
        let _ = decode_frame(&bytes);
        let end = cut.index(bytes.len() + 1);
        let _ = decode_frame(&bytes[..end]);
    }

    #[test]
    fn commands_roundtrip(c in command()) {
        prop_assert_eq!(Command::decode(&c.encode()).unwrap(), c);
    }

    #[test]
    fn arbitrary_command_sets_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Command::decode(&bytes);
    }

    #[test]
    fn mutated_command_sets_never_panic(
        c in command(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = c.encode();
        for (i, v) in flips {
            let at = i.index(bytes.len());
            bytes[at] = v;
        }
        let _ = Command::decode(&bytes);
        let end = cut.index(bytes.len() + 1);
        let _ = Command::decode(&bytes[..end]);
    }
}
