//! `&str` → [`Event`]. Pure, allocation-light, never panics.

use chrono::{DateTime, FixedOffset};

use super::types::*;

/// Why a line could not be turned into an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} in line {line:?}")]
pub struct ParseError {
    /// The offending line (cut to 200 bytes).
    pub line: String,
    pub kind: ParseErrorKind,
}

/// The reason a line was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("empty line")]
    Empty,
    #[error("bad timestamp {0:?}")]
    BadTimestamp(String),
    #[error("unknown action {0:?}")]
    UnknownAction(String),
    #[error("missing object after the action")]
    MissingObject,
    #[error("unknown object {0:?}")]
    UnknownObject(String),
    #[error("missing identity key {0:?}")]
    MissingKey(&'static str),
    #[error("bad value {value:?} for identity key {key:?}")]
    BadIdentity { key: &'static str, value: String },
    #[error("malformed `- skipped N` line")]
    BadSkipped,
}

const MAX_QUOTED_LINE: usize = 200;

fn error(line: &str, kind: ParseErrorKind) -> ParseError {
    let mut end = line.len().min(MAX_QUOTED_LINE);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    ParseError {
        line: line[..end].to_owned(),
        kind,
    }
}

/// Parses one line of `drbdsetup events2` output (with or without the
/// trailing newline).
///
/// Unknown keys and values are kept in the event; only a line whose action,
/// object or identity cannot be understood is an error.
pub fn parse_line(line: &str) -> Result<Event<'_>, ParseError> {
    let text = line.trim_end_matches(['\n', '\r']);
    let mut tokens = text.split_ascii_whitespace().peekable();
    let Some(first) = tokens.peek().copied() else {
        return Err(error(line, ParseErrorKind::Empty));
    };

    let timestamp = if first.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        tokens.next();
        Some(
            parse_timestamp(first)
                .ok_or_else(|| error(line, ParseErrorKind::BadTimestamp(first.to_owned())))?,
        )
    } else {
        None
    };

    let Some(action_word) = tokens.next() else {
        return Err(error(line, ParseErrorKind::Empty));
    };

    if action_word == "-" {
        // `- skipped N`
        let (Some("skipped"), Some(count), None) = (tokens.next(), tokens.next(), tokens.next())
        else {
            return Err(error(line, ParseErrorKind::BadSkipped));
        };
        let count = count
            .parse()
            .map_err(|_| error(line, ParseErrorKind::BadSkipped))?;
        return Ok(Event {
            timestamp,
            body: Body::Skipped(count),
        });
    }

    let action = Action::from_wire(action_word);
    if !action.is_known() {
        return Err(error(
            line,
            ParseErrorKind::UnknownAction(action_word.to_owned()),
        ));
    }

    let Some(object_word) = tokens.next() else {
        return Err(error(line, ParseErrorKind::MissingObject));
    };
    if object_word == "-" && action == Action::Exists {
        return Ok(Event {
            timestamp,
            body: Body::InitialDumpDone,
        });
    }
    let object = ObjectKind::from_wire(object_word);
    if !object.is_known() {
        return Err(error(
            line,
            ParseErrorKind::UnknownObject(object_word.to_owned()),
        ));
    }

    let mut id = Identity::default();
    let mut have_name = false;
    let mut fields = Vec::with_capacity(8);
    for token in tokens {
        let (key, value) = token.split_once(':').unwrap_or((token, ""));
        if let Some(slot) = identity_slot(&object, key) {
            match slot {
                IdentitySlot::Name => {
                    id.name = value;
                    have_name = true;
                }
                IdentitySlot::PeerNodeId => {
                    id.peer_node_id = Some(number(line, "peer-node-id", value)?)
                }
                IdentitySlot::ConnName => id.conn_name = Some(value),
                IdentitySlot::Volume => id.volume = Some(number(line, "volume", value)?),
                IdentitySlot::Minor => id.minor = Some(number(line, "minor", value)?),
                IdentitySlot::Local => id.local = Some(value),
                IdentitySlot::Peer => id.peer = Some(value),
            }
            continue;
        }
        fields.push(parse_field(key, value));
    }

    if !have_name {
        return Err(error(line, ParseErrorKind::MissingKey("name")));
    }
    let required: &[(&'static str, bool)] = match object {
        ObjectKind::Device => &[("volume", id.volume.is_some())],
        ObjectKind::Connection => &[("conn-name", id.conn_name.is_some())],
        ObjectKind::PeerDevice => &[
            ("conn-name", id.conn_name.is_some()),
            ("volume", id.volume.is_some()),
        ],
        ObjectKind::Path => &[
            ("conn-name", id.conn_name.is_some()),
            ("local", id.local.is_some()),
            ("peer", id.peer.is_some()),
        ],
        _ => &[],
    };
    if let Some((key, _)) = required.iter().find(|(_, present)| !present) {
        return Err(error(line, ParseErrorKind::MissingKey(key)));
    }

    Ok(Event {
        timestamp,
        body: Body::Object(ObjectEvent {
            action,
            object,
            id,
            fields,
        }),
    })
}

fn parse_timestamp(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text).ok()
}

fn number(line: &str, key: &'static str, value: &str) -> Result<u32, ParseError> {
    value.parse().map_err(|_| {
        error(
            line,
            ParseErrorKind::BadIdentity {
                key,
                value: value.to_owned(),
            },
        )
    })
}

enum IdentitySlot {
    Name,
    PeerNodeId,
    ConnName,
    Volume,
    Minor,
    Local,
    Peer,
}

fn identity_slot(object: &ObjectKind, key: &str) -> Option<IdentitySlot> {
    use ObjectKind as O;
    let slot = match key {
        "name" => IdentitySlot::Name,
        "peer-node-id" => IdentitySlot::PeerNodeId,
        "conn-name" => IdentitySlot::ConnName,
        "volume" => IdentitySlot::Volume,
        "minor" => IdentitySlot::Minor,
        "local" => IdentitySlot::Local,
        "peer" => IdentitySlot::Peer,
        _ => return None,
    };
    let applies = match (&slot, object) {
        (IdentitySlot::Name, _) => true,
        (IdentitySlot::PeerNodeId | IdentitySlot::ConnName, O::Resource | O::Device) => false,
        (IdentitySlot::PeerNodeId | IdentitySlot::ConnName, _) => true,
        (IdentitySlot::Volume, O::Device | O::PeerDevice | O::Helper) => true,
        (IdentitySlot::Minor, O::Device | O::Helper) => true,
        (IdentitySlot::Local | IdentitySlot::Peer, O::Path | O::Helper) => true,
        _ => false,
    };
    applies.then_some(slot)
}

fn flags<T>(value: &str, from_wire: impl Fn(&str) -> T) -> Flags<T> {
    if value == "no" {
        return Flags(Vec::new());
    }
    Flags(value.split(',').map(from_wire).collect())
}

fn parse_field<'a>(key: &'a str, value: &'a str) -> Field<'a> {
    let field = match key {
        "role" => Field::Role(Role::from_wire(value)),
        "suspended" => Field::Suspended(flags(value, SuspendReason::from_wire)),
        "force-io-failures" => Field::ForceIoFailures(YesNo::from_wire(value)),
        "write-ordering" => Field::WriteOrdering(WriteOrdering::from_wire(value)),
        "may_promote" => Field::MayPromote(YesNo::from_wire(value)),
        "new_name" => Field::NewName(value),
        "connection" => Field::Connection(ConnectionState::from_wire(value)),
        "congested" => Field::Congested(YesNo::from_wire(value)),
        "sync-state" => Field::SyncState(SyncState::from_wire(value)),
        "backing_dev" => Field::BackingDev(value),
        "disk" => Field::Disk(DiskState::from_wire(value)),
        "client" => Field::Client(Tristate::from_wire(value)),
        "open" => Field::Open(Tristate::from_wire(value)),
        "quorum" => Field::Quorum(YesNo::from_wire(value)),
        "al-suspended" => Field::AlSuspended(YesNo::from_wire(value)),
        "blocked" => Field::Blocked(flags(value, BlockedBy::from_wire)),
        "replication" => Field::Replication(ReplicationState::from_wire(value)),
        "peer-disk" => Field::PeerDisk(DiskState::from_wire(value)),
        "peer-client" => Field::PeerClient(Tristate::from_wire(value)),
        "resync-suspended" => Field::ResyncSuspended(flags(value, ResyncSuspendReason::from_wire)),
        "established" => Field::Established(YesNo::from_wire(value)),
        "helper" => Field::Helper(value),
        "status" => match value.parse() {
            Ok(status) => Field::Status(status),
            Err(_) => Field::Invalid { key, value },
        },
        "eta" => match value {
            "nan" | "-nan" | "inf" | "-inf" => Field::Eta(Eta::Unknown),
            _ => match value.parse() {
                Ok(seconds) => Field::Eta(Eta::Seconds(seconds)),
                Err(_) => Field::Invalid { key, value },
            },
        },
        _ => {
            if let Some((counter, _)) = Counter::ALL.iter().find(|(_, k)| *k == key) {
                match value.parse() {
                    Ok(number) => Field::Counter(*counter, number),
                    Err(_) => Field::Invalid { key, value },
                }
            } else if let Some((rate, _)) = Rate::ALL.iter().find(|(_, k)| *k == key) {
                match value.parse::<f64>() {
                    Ok(number) if number.is_finite() => Field::Rate(*rate, number),
                    _ => Field::Invalid { key, value },
                }
            } else {
                Field::Unknown { key, value }
            }
        }
    };
    // An empty value for a known enum key is not a value DRBD prints.
    if value.is_empty() && !matches!(field, Field::Unknown { .. }) {
        return Field::Invalid { key, value };
    }
    field
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(line: &str) -> ObjectEvent<'_> {
        match parse_line(line).expect("parses").body {
            Body::Object(object) => object,
            other => panic!("not an object event: {other:?}"),
        }
    }

    #[test]
    fn resource_line_with_all_groups() {
        let event = object("exists resource name:r0 role:Secondary suspended:no force-io-failures:no write-ordering:flush may_promote:no promotion_score:10103");
        assert_eq!(event.action, Action::Exists);
        assert_eq!(event.object, ObjectKind::Resource);
        assert_eq!(event.id.name, "r0");
        assert_eq!(
            event.fields,
            vec![
                Field::Role(Role::Secondary),
                Field::Suspended(Flags(vec![])),
                Field::ForceIoFailures(YesNo::No),
                Field::WriteOrdering(WriteOrdering::Flush),
                Field::MayPromote(YesNo::No),
                Field::Counter(Counter::PromotionScore, 10103),
            ]
        );
    }

    #[test]
    fn values_split_at_first_colon_only() {
        let event = object("change path name:r0 peer-node-id:1 conn-name:b local:ipv6:[fe80::1%eth0]:7000 peer:ipv4:10.0.0.2:7000 established:yes");
        assert_eq!(event.id.local, Some("ipv6:[fe80::1%eth0]:7000"));
        assert_eq!(event.id.peer, Some("ipv4:10.0.0.2:7000"));
        assert_eq!(event.fields, vec![Field::Established(YesNo::Yes)]);
    }

    #[test]
    fn end_of_dump_and_timestamps_with_any_offset() {
        let event = parse_line("2019-05-07T13:50:23.974032-03:30 exists -\n").expect("parses");
        assert_eq!(event.body, Body::InitialDumpDone);
        let ts = event.timestamp.expect("timestamp");
        assert_eq!(ts.offset().local_minus_utc(), -(3 * 3600 + 30 * 60));
        assert_eq!(ts.timestamp_subsec_micros(), 974032);
        assert_eq!(
            parse_line("exists -").expect("parses").body,
            Body::InitialDumpDone
        );
    }

    #[test]
    fn skipped_lines_of_older_utils() {
        let event = parse_line("2020-01-01T00:00:00.000000+00:00 - skipped 17").expect("parses");
        assert_eq!(event.body, Body::Skipped(17));
        assert_eq!(
            parse_line("- skipped x").map_err(|e| e.kind),
            Err(ParseErrorKind::BadSkipped)
        );
    }

    #[test]
    fn unknown_enum_value_keeps_the_rest_of_the_line() {
        let line = "change peer-device name:r0 peer-node-id:1 conn-name:b volume:0 replication:Frobnicating peer-disk:UpToDate peer-client:no";
        let event = parse_line(line).expect("parses");
        assert_eq!(event.unknown_values(), 1);
        let Body::Object(object) = event.body else {
            panic!("object")
        };
        assert_eq!(
            object.fields,
            vec![
                Field::Replication(ReplicationState::Other("Frobnicating".into())),
                Field::PeerDisk(DiskState::UpToDate),
                Field::PeerClient(Tristate::No),
            ]
        );
    }

    #[test]
    fn unknown_keys_are_kept_and_counted() {
        let event =
            parse_line("change device name:r0 volume:0 minor:1 disk:UpToDate shiny:new:thing")
                .expect("parses");
        assert_eq!(event.unknown_keys(), 1);
        let Body::Object(object) = event.body else {
            panic!("object")
        };
        assert_eq!(
            object.fields[1],
            Field::Unknown {
                key: "shiny",
                value: "new:thing"
            }
        );
    }

    #[test]
    fn bad_numbers_in_fields_are_invalid_not_fatal() {
        let event =
            parse_line("change device name:r0 volume:0 minor:1 size:abc read:5").expect("parses");
        assert_eq!(event.unknown_values(), 1);
        let Body::Object(object) = event.body else {
            panic!("object")
        };
        assert_eq!(object.fields[1], Field::Counter(Counter::Read, 5));
    }

    #[test]
    fn statistics_of_a_running_resync() {
        let event = object("change peer-device name:r0 peer-node-id:1 conn-name:bravo volume:0 done:17.48 received:0 sent:707584 out-of-sync:865280 pending:3 unacked:0 rs-total:2097152 rs-dt-start-ms:3000 rs-paused-ms:0 rs-dt0-ms:0 rs-db0-sectors:0 rs-dt1-ms:3000 rs-db1-sectors:366592 rs-failed:0 rs-same-csum:0 want:61.00 dbdt:59.67 dbdt0:0.00 dbdt1:59.67 eta:14");
        assert!(event.fields.contains(&Field::Rate(Rate::Done, 17.48)));
        assert!(event.fields.contains(&Field::Rate(Rate::Want, 61.0)));
        assert!(event
            .fields
            .contains(&Field::Counter(Counter::RsDb1Sectors, 366592)));
        assert!(event.fields.contains(&Field::Eta(Eta::Seconds(14))));
        assert!(!event
            .fields
            .iter()
            .any(|f| f.is_unknown_key() || f.is_unknown_value()));
        let start = object(
            "change peer-device name:r0 peer-node-id:1 conn-name:bravo volume:0 dbdt1:0.00 eta:nan",
        );
        assert!(start.fields.contains(&Field::Eta(Eta::Unknown)));
    }

    #[test]
    fn old_peer_device_without_peer_node_id() {
        let event = object("2017-02-15T14:43:16.688437+00:00 exists peer-device name:test0 conn-name:peer volume:0 replication:SyncSource peer-disk:Inconsistent resync-suspended:no received:0 sent:2050743348 out-of-sync:205655500 pending:0 unacked:0");
        assert_eq!(event.id.peer_node_id, None);
        assert_eq!(event.id.conn_name, Some("peer"));
    }

    #[test]
    fn helper_lines() {
        let event = object("response helper name:r0 peer-node-id:1 conn-name:bravo volume:0 minor:1000 helper:before-resync-source status:256");
        assert_eq!(event.action, Action::Response);
        assert_eq!(event.id.minor, Some(1000));
        assert_eq!(
            event.fields,
            vec![Field::Helper("before-resync-source"), Field::Status(256)]
        );
    }

    #[test]
    fn flags_lists() {
        let event = object("change resource name:r0 suspended:user,quorum");
        assert_eq!(
            event.fields,
            vec![Field::Suspended(Flags(vec![
                SuspendReason::User,
                SuspendReason::Quorum
            ]))]
        );
        assert_eq!(
            Flags(vec![SuspendReason::User, SuspendReason::Quorum]).to_string(),
            "user,quorum"
        );
        assert_eq!(Flags::<SuspendReason>(vec![]).to_string(), "no");
    }

    #[test]
    fn malformed_lines_are_typed_errors() {
        let cases: &[(&str, ParseErrorKind)] = &[
            ("", ParseErrorKind::Empty),
            ("   \n", ParseErrorKind::Empty),
            (
                "jump resource name:r0",
                ParseErrorKind::UnknownAction("jump".into()),
            ),
            ("change", ParseErrorKind::MissingObject),
            (
                "change gizmo name:r0",
                ParseErrorKind::UnknownObject("gizmo".into()),
            ),
            (
                "change resource role:Primary",
                ParseErrorKind::MissingKey("name"),
            ),
            (
                "change device name:r0 minor:1",
                ParseErrorKind::MissingKey("volume"),
            ),
            (
                "change peer-device name:r0 conn-name:x volume:zero",
                ParseErrorKind::BadIdentity {
                    key: "volume",
                    value: "zero".into(),
                },
            ),
            (
                "2020-13-45T99 exists -",
                ParseErrorKind::BadTimestamp("2020-13-45T99".into()),
            ),
            (
                "change path name:r0 conn-name:x local:ipv4:1.2.3.4:1",
                ParseErrorKind::MissingKey("peer"),
            ),
        ];
        for (line, kind) in cases {
            let err = parse_line(line).expect_err(line);
            assert_eq!(&err.kind, kind, "{line}");
        }
    }

    #[test]
    fn error_quotes_long_lines_on_a_char_boundary() {
        let line = format!("bogus {}", "é".repeat(300));
        let err = parse_line(&line).expect_err("bogus");
        assert!(err.line.len() <= MAX_QUOTED_LINE);
        assert!(err.to_string().contains("unknown action"));
    }
}
