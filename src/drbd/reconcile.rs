//! Comparing the live model with a fresh `events2 --now` dump.
//!
//! Only states are compared. Counters, rates, resync progress, in-flight
//! amounts and helper records move all the time and are ignored.

use std::collections::BTreeMap;
use std::fmt;

use crate::events2::{parse_line, Body};
use crate::state::{Model, ObjectRef};

/// One way the two models differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// In the live model only.
    OnlyLive(ObjectRef),
    /// In the fresh dump only.
    OnlyFresh(ObjectRef),
    /// A state field has another value (`None` printed as `-`).
    Field {
        object: ObjectRef,
        field: &'static str,
        live: String,
        fresh: String,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OnlyLive(object) => write!(f, "{} only in the live model", describe(object)),
            Self::OnlyFresh(object) => write!(f, "{} only in the fresh dump", describe(object)),
            Self::Field {
                object,
                field,
                live,
                fresh,
            } => write!(
                f,
                "{} {field}: live {live}, fresh {fresh}",
                describe(object)
            ),
        }
    }
}

/// `resource r0 connection bravo volume 0`.
pub fn describe(object: &ObjectRef) -> String {
    match object {
        ObjectRef::Resource { resource } => format!("resource {resource}"),
        ObjectRef::Device { resource, volume } => format!("resource {resource} volume {volume}"),
        ObjectRef::Connection {
            resource,
            connection,
        } => format!("resource {resource} connection {connection}"),
        ObjectRef::PeerDevice {
            resource,
            connection,
            volume,
        } => format!("resource {resource} connection {connection} volume {volume}"),
        ObjectRef::Path {
            resource,
            connection,
            local,
            peer,
        } => format!("resource {resource} connection {connection} path {local} {peer}"),
    }
}

type Fields = Vec<(&'static str, String)>;

fn show<T: fmt::Display>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map_or_else(|| "-".to_owned(), ToString::to_string)
}

/// Every object of the model with its comparable state fields.
fn project(model: &Model) -> BTreeMap<ObjectRef, Fields> {
    let mut out = BTreeMap::new();
    for (name, resource) in model.resources() {
        out.insert(
            ObjectRef::Resource {
                resource: name.clone(),
            },
            vec![
                ("role", show(&resource.role)),
                ("suspended", show(&resource.suspended)),
                ("may_promote", show(&resource.may_promote)),
            ],
        );
        for (volume, device) in &resource.devices {
            out.insert(
                ObjectRef::Device {
                    resource: name.clone(),
                    volume: *volume,
                },
                vec![
                    ("minor", show(&device.minor)),
                    ("backing_dev", show(&device.backing_dev)),
                    ("disk", show(&device.disk)),
                    ("client", show(&device.client)),
                    ("quorum", show(&device.quorum)),
                ],
            );
        }
        for (conn_name, connection) in &resource.connections {
            out.insert(
                ObjectRef::Connection {
                    resource: name.clone(),
                    connection: conn_name.clone(),
                },
                vec![
                    ("peer-node-id", show(&connection.peer_node_id)),
                    ("connection", show(&connection.connection)),
                    ("role", show(&connection.peer_role)),
                ],
            );
            for (volume, peer_device) in &connection.peer_devices {
                out.insert(
                    ObjectRef::PeerDevice {
                        resource: name.clone(),
                        connection: conn_name.clone(),
                        volume: *volume,
                    },
                    vec![
                        ("replication", show(&peer_device.replication)),
                        ("peer-disk", show(&peer_device.peer_disk)),
                        ("peer-client", show(&peer_device.peer_client)),
                    ],
                );
            }
            for path in &connection.paths {
                out.insert(
                    ObjectRef::Path {
                        resource: name.clone(),
                        connection: conn_name.clone(),
                        local: path.local.clone(),
                        peer: path.peer.clone(),
                    },
                    vec![("established", show(&path.established))],
                );
            }
        }
    }
    out
}

/// The state differences between `live` and `fresh`, in object order.
/// Empty = the live model is right.
pub fn compare(live: &Model, fresh: &Model) -> Vec<Difference> {
    let live = project(live);
    let fresh = project(fresh);
    let mut out = Vec::new();
    for (object, live_fields) in &live {
        let Some(fresh_fields) = fresh.get(object) else {
            out.push(Difference::OnlyLive(object.clone()));
            continue;
        };
        for ((field, live_value), (_, fresh_value)) in live_fields.iter().zip(fresh_fields) {
            if live_value != fresh_value {
                out.push(Difference::Field {
                    object: object.clone(),
                    field,
                    live: live_value.clone(),
                    fresh: fresh_value.clone(),
                });
            }
        }
    }
    for object in fresh.keys() {
        if !live.contains_key(object) {
            out.push(Difference::OnlyFresh(object.clone()));
        }
    }
    out
}

/// A model built from a complete dump (`events2 --now` output).
#[derive(Debug, Clone, PartialEq)]
pub struct Dump {
    pub model: Model,
    /// Lines that could not be parsed.
    pub parse_errors: usize,
}

/// Applies every line of `text` to a new model. The dump is complete only if
/// it ended with `exists -` (see `model.initial_dump_done()`).
pub fn model_from_dump(text: &str) -> Dump {
    let mut model = Model::new();
    let mut parse_errors = 0;
    for line in text.lines() {
        match parse_line(line) {
            Ok(event) => {
                if !matches!(event.body, Body::Skipped(_)) {
                    model.apply(&event);
                }
            }
            Err(_) => parse_errors += 1,
        }
    }
    Dump {
        model,
        parse_errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "\
exists resource name:r0 role:Secondary suspended:no force-io-failures:no may_promote:no promotion_score:10103
exists connection name:r0 peer-node-id:1 conn-name:bravo connection:Connected role:Secondary congested:no ap-in-flight:0 rs-in-flight:0
exists device name:r0 volume:0 minor:1000 backing_dev:/dev/vg0/r0 disk:UpToDate client:no open:no quorum:yes size:10485760 read:2112 written:524288
exists peer-device name:r0 peer-node-id:1 conn-name:bravo volume:0 replication:Established peer-disk:UpToDate peer-client:no resync-suspended:no received:0 sent:524288 out-of-sync:0
exists path name:r0 peer-node-id:1 conn-name:bravo local:ipv4:10.0.0.1:7000 peer:ipv4:10.0.0.2:7000 established:yes
exists -
";

    fn model(extra: &str) -> Model {
        let dump = model_from_dump(&format!("{DUMP}{extra}"));
        assert_eq!(dump.parse_errors, 0);
        assert!(dump.model.initial_dump_done());
        dump.model
    }

    #[test]
    fn equal_models() {
        assert_eq!(compare(&model(""), &model("")), vec![]);
    }

    #[test]
    fn counters_and_progress_are_ignored() {
        let moved = model(
            "change peer-device name:r0 peer-node-id:1 conn-name:bravo volume:0 done:50.00 received:7 sent:99 out-of-sync:123 pending:4 dbdt1:10.00 eta:3\n\
             change device name:r0 volume:0 minor:1000 read:9999 written:9999 al-writes:5\n\
             change connection name:r0 peer-node-id:1 conn-name:bravo congested:yes ap-in-flight:100 rs-in-flight:7\n\
             change resource name:r0 may_promote:no promotion_score:1\n",
        );
        assert_eq!(compare(&model(""), &moved), vec![]);
    }

    #[test]
    fn state_differences_are_found() {
        let fresh = model(
            "change connection name:r0 peer-node-id:1 conn-name:bravo connection:Connecting\n\
             change resource name:r0 role:Primary\n",
        );
        let differences = compare(&model(""), &fresh);
        assert_eq!(
            differences,
            vec![
                Difference::Field {
                    object: ObjectRef::Resource {
                        resource: "r0".into()
                    },
                    field: "role",
                    live: "Secondary".into(),
                    fresh: "Primary".into(),
                },
                Difference::Field {
                    object: ObjectRef::Connection {
                        resource: "r0".into(),
                        connection: "bravo".into()
                    },
                    field: "connection",
                    live: "Connected".into(),
                    fresh: "Connecting".into(),
                },
            ]
        );
        assert_eq!(
            differences[1].to_string(),
            "resource r0 connection bravo connection: live Connected, fresh Connecting"
        );
    }

    #[test]
    fn missing_and_extra_objects() {
        let live = model("");
        let fresh = model(
            "destroy path name:r0 peer-node-id:1 conn-name:bravo local:ipv4:10.0.0.1:7000 peer:ipv4:10.0.0.2:7000\n\
             create device name:r0 volume:1 minor:1001 backing_dev:none disk:Diskless client:yes open:no quorum:yes\n",
        );
        let differences = compare(&live, &fresh);
        assert_eq!(differences.len(), 2, "{differences:?}");
        assert!(matches!(
            &differences[0],
            Difference::OnlyLive(ObjectRef::Path { .. })
        ));
        assert!(matches!(
            &differences[1],
            Difference::OnlyFresh(ObjectRef::Device { volume: 1, .. })
        ));
        assert_eq!(compare(&Model::new(), &Model::new()), vec![]);
    }

    #[test]
    fn dump_counts_garbage() {
        let dump = model_from_dump("garbage here\nexists -\n");
        assert_eq!(dump.parse_errors, 1);
        assert!(dump.model.initial_dump_done());
    }
}
