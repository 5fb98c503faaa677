//! `Model::apply`: one event in, the changes it made out.

use chrono::{DateTime, FixedOffset};

use super::{
    Change, Connection, Device, HelperRecord, HelperResponse, Helpers, Model, ObjectRef, Path,
    PeerDevice, Resource, UnknownFields,
};
use crate::events2::{Action, Body, Counter, Event, Field, Identity, ObjectKind, Rate};

/// Sets `slot` to `value`, reporting whether it changed.
fn set<T: PartialEq>(slot: &mut Option<T>, value: T) -> bool {
    if slot.as_ref() == Some(&value) {
        return false;
    }
    *slot = Some(value);
    true
}

fn set_unknown(unknown: &mut UnknownFields, key: &str, value: &str) -> bool {
    if unknown.get(key).map(String::as_str) == Some(value) {
        return false;
    }
    unknown.insert(key.to_owned(), value.to_owned());
    true
}

/// A field that does not belong to the object it arrived on (or an unknown
/// key) is kept verbatim with the object's unknown keys.
fn keep_unknown(unknown: &mut UnknownFields, field: &Field<'_>) -> bool {
    match field {
        Field::Unknown { key, value } => set_unknown(unknown, key, value),
        // Unreadable values keep the previous value of the field.
        Field::Invalid { .. } => false,
        other => {
            let (key, value) = other.wire();
            set_unknown(unknown, key, &value)
        }
    }
}

impl Model {
    /// Applies one parsed line and returns what changed.
    pub fn apply(&mut self, event: &Event<'_>) -> Vec<Change> {
        if event.timestamp.is_some() {
            self.last_event_at = event.timestamp;
        }
        let object = match &event.body {
            Body::InitialDumpDone => {
                self.initial_dump_done = true;
                return vec![Change::InitialDumpComplete];
            }
            Body::Skipped(count) => return vec![Change::EventsLost { count: *count }],
            Body::Object(object) => object,
        };
        let mut changes = Vec::new();
        match object.action {
            Action::Exists | Action::Create | Action::Change => self.update(
                object.object.clone(),
                &object.id,
                &object.fields,
                &mut changes,
            ),
            Action::Destroy => self.destroy(&object.object, &object.id, &mut changes),
            Action::Rename => self.rename(&object.id, &object.fields, &mut changes),
            Action::Call | Action::Response => self.helper(
                object.action == Action::Response,
                &object.id,
                &object.fields,
                event.timestamp,
                &mut changes,
            ),
            Action::Other(_) => {}
        }
        changes
    }

    fn resource_entry(&mut self, name: &str, changes: &mut Vec<Change>) -> &mut Resource {
        if !self.resources.contains_key(name) {
            self.resources.insert(
                name.to_owned(),
                Resource {
                    name: name.to_owned(),
                    ..Resource::default()
                },
            );
            changes.push(Change::Created {
                object: ObjectRef::Resource {
                    resource: name.to_owned(),
                },
            });
        }
        // Inserted just above when missing. (The entry API would allocate the
        // name on every event of the hot path, which this avoids.)
        #[allow(clippy::expect_used)]
        self.resources.get_mut(name).expect("resource present")
    }

    fn update(
        &mut self,
        kind: ObjectKind,
        id: &Identity<'_>,
        fields: &[Field<'_>],
        changes: &mut Vec<Change>,
    ) {
        let name = id.name;
        let resource = self.resource_entry(name, changes);
        let (changed, object) = match kind {
            ObjectKind::Resource => {
                let mut changed = !resource.announced;
                resource.announced = true;
                for field in fields {
                    changed |= apply_resource_field(resource, field);
                }
                let object = ObjectRef::Resource {
                    resource: name.to_owned(),
                };
                (changed, object)
            }
            ObjectKind::Device => {
                let volume = id.volume.unwrap_or_default();
                let device = device_entry(resource, volume, changes);
                let mut changed = !device.announced;
                device.announced = true;
                if let Some(minor) = id.minor {
                    changed |= set(&mut device.minor, minor);
                }
                for field in fields {
                    changed |= apply_device_field(device, field);
                }
                (
                    changed,
                    ObjectRef::Device {
                        resource: name.to_owned(),
                        volume,
                    },
                )
            }
            ObjectKind::Connection => {
                let conn_name = id.conn_name.unwrap_or_default();
                let connection = connection_entry(resource, conn_name, id.peer_node_id, changes);
                let mut changed = !connection.announced;
                connection.announced = true;
                for field in fields {
                    changed |= apply_connection_field(connection, field);
                }
                let object = ObjectRef::Connection {
                    resource: name.to_owned(),
                    connection: conn_name.to_owned(),
                };
                (changed, object)
            }
            ObjectKind::PeerDevice => {
                let conn_name = id.conn_name.unwrap_or_default();
                let volume = id.volume.unwrap_or_default();
                let connection = connection_entry(resource, conn_name, id.peer_node_id, changes);
                let peer_device = peer_device_entry(name, connection, volume, changes);
                let mut changed = !peer_device.announced;
                peer_device.announced = true;
                for field in fields {
                    changed |= apply_peer_device_field(peer_device, field);
                }
                changed |= clear_resync_details(peer_device);
                let object = ObjectRef::PeerDevice {
                    resource: name.to_owned(),
                    connection: conn_name.to_owned(),
                    volume,
                };
                (changed, object)
            }
            ObjectKind::Path => {
                let conn_name = id.conn_name.unwrap_or_default();
                let local = id.local.unwrap_or_default();
                let peer = id.peer.unwrap_or_default();
                let connection = connection_entry(resource, conn_name, id.peer_node_id, changes);
                let path = path_entry(name, connection, local, peer, changes);
                let mut changed = !path.announced;
                path.announced = true;
                for field in fields {
                    changed |= match field {
                        Field::Established(value) => set(&mut path.established, value.clone()),
                        other => keep_unknown(&mut path.unknown, other),
                    };
                }
                let object = ObjectRef::Path {
                    resource: name.to_owned(),
                    connection: conn_name.to_owned(),
                    local: local.to_owned(),
                    peer: peer.to_owned(),
                };
                (changed, object)
            }
            ObjectKind::Helper | ObjectKind::Other(_) => return,
        };
        if changed
            && !changes
                .iter()
                .any(|c| matches!(c, Change::Created { object: o } if *o == object))
        {
            changes.push(Change::Updated { object });
        }
    }

    fn destroy(&mut self, kind: &ObjectKind, id: &Identity<'_>, changes: &mut Vec<Change>) {
        let name = id.name;
        let removed = match kind {
            ObjectKind::Resource => self.resources.remove(name).map(|_| ObjectRef::Resource {
                resource: name.to_owned(),
            }),
            ObjectKind::Device => {
                let volume = id.volume.unwrap_or_default();
                self.resources
                    .get_mut(name)
                    .and_then(|r| r.devices.remove(&volume))
                    .map(|_| ObjectRef::Device {
                        resource: name.to_owned(),
                        volume,
                    })
            }
            ObjectKind::Connection => {
                let conn_name = id.conn_name.unwrap_or_default();
                self.resources
                    .get_mut(name)
                    .and_then(|r| r.connections.remove(conn_name))
                    .map(|_| ObjectRef::Connection {
                        resource: name.to_owned(),
                        connection: conn_name.to_owned(),
                    })
            }
            ObjectKind::PeerDevice => {
                let conn_name = id.conn_name.unwrap_or_default();
                let volume = id.volume.unwrap_or_default();
                self.resources
                    .get_mut(name)
                    .and_then(|r| r.connections.get_mut(conn_name))
                    .and_then(|c| c.peer_devices.remove(&volume))
                    .map(|_| ObjectRef::PeerDevice {
                        resource: name.to_owned(),
                        connection: conn_name.to_owned(),
                        volume,
                    })
            }
            ObjectKind::Path => {
                let conn_name = id.conn_name.unwrap_or_default();
                let local = id.local.unwrap_or_default();
                let peer = id.peer.unwrap_or_default();
                self.resources
                    .get_mut(name)
                    .and_then(|r| r.connections.get_mut(conn_name))
                    .and_then(|c| {
                        let index = c
                            .paths
                            .iter()
                            .position(|p| p.local == local && p.peer == peer)?;
                        Some(c.paths.remove(index))
                    })
                    .map(|_| ObjectRef::Path {
                        resource: name.to_owned(),
                        connection: conn_name.to_owned(),
                        local: local.to_owned(),
                        peer: peer.to_owned(),
                    })
            }
            ObjectKind::Helper | ObjectKind::Other(_) => None,
        };
        if let Some(object) = removed {
            changes.push(Change::Destroyed { object });
        }
    }

    fn rename(&mut self, id: &Identity<'_>, fields: &[Field<'_>], changes: &mut Vec<Change>) {
        let Some(new_name) = fields.iter().find_map(|f| match f {
            Field::NewName(name) => Some(*name),
            _ => None,
        }) else {
            return;
        };
        let Some(mut resource) = self.resources.remove(id.name) else {
            return;
        };
        resource.name = new_name.to_owned();
        self.resources.insert(new_name.to_owned(), resource);
        changes.push(Change::Renamed {
            from: id.name.to_owned(),
            to: new_name.to_owned(),
        });
    }

    fn helper(
        &mut self,
        response: bool,
        id: &Identity<'_>,
        fields: &[Field<'_>],
        at: Option<DateTime<FixedOffset>>,
        changes: &mut Vec<Change>,
    ) {
        let mut helper_name = None;
        let mut status = None;
        for field in fields {
            match field {
                Field::Helper(name) => helper_name = Some(*name),
                Field::Status(value) => status = Some(*value),
                _ => {}
            }
        }
        let Some(helper_name) = helper_name else {
            return;
        };
        let object = self.helper_target(id);
        let helpers = self.helpers_mut(&object);
        let record_call = |helpers: Option<&mut Helpers>| {
            if let Some(helpers) = helpers {
                let record = helpers
                    .entry(helper_name.to_owned())
                    .or_insert_with(HelperRecord::default);
                record.calls += 1;
                record.last_call = at;
                record.last_response = None;
            }
        };
        if response {
            let status = status.unwrap_or_default();
            let exit_code = status >> 8;
            if let Some(helpers) = helpers {
                let record = helpers
                    .entry(helper_name.to_owned())
                    .or_insert_with(HelperRecord::default);
                record.last_response = Some(HelperResponse {
                    at,
                    status,
                    exit_code,
                });
            }
            changes.push(Change::HelperResponded {
                object,
                helper: helper_name.to_owned(),
                status,
                exit_code,
            });
        } else {
            record_call(helpers);
            changes.push(Change::HelperCalled {
                object,
                helper: helper_name.to_owned(),
            });
        }
    }

    /// The most specific existing object a helper line names. Helper lines
    /// never create objects (they also fire while objects are torn down).
    fn helper_target(&self, id: &Identity<'_>) -> ObjectRef {
        let resource = id.name.to_owned();
        let Some(known) = self.resources.get(id.name) else {
            return ObjectRef::Resource { resource };
        };
        let connection = id.conn_name.and_then(|c| known.connections.get(c));
        match (connection, id.volume) {
            (Some(connection), Some(volume)) if connection.peer_devices.contains_key(&volume) => {
                ObjectRef::PeerDevice {
                    resource,
                    connection: connection.conn_name.clone(),
                    volume,
                }
            }
            (Some(connection), _) => ObjectRef::Connection {
                resource,
                connection: connection.conn_name.clone(),
            },
            (None, Some(volume))
                if id.conn_name.is_none() && known.devices.contains_key(&volume) =>
            {
                ObjectRef::Device { resource, volume }
            }
            _ => ObjectRef::Resource { resource },
        }
    }

    /// The helper records of an object, if it exists.
    fn helpers_mut(&mut self, object: &ObjectRef) -> Option<&mut Helpers> {
        match object {
            ObjectRef::Resource { resource } => {
                self.resources.get_mut(resource).map(|r| &mut r.helpers)
            }
            ObjectRef::Device { resource, volume } => self
                .resources
                .get_mut(resource)?
                .devices
                .get_mut(volume)
                .map(|d| &mut d.helpers),
            ObjectRef::Connection {
                resource,
                connection,
            } => self
                .resources
                .get_mut(resource)?
                .connections
                .get_mut(connection)
                .map(|c| &mut c.helpers),
            ObjectRef::PeerDevice {
                resource,
                connection,
                volume,
            } => self
                .resources
                .get_mut(resource)?
                .connections
                .get_mut(connection)?
                .peer_devices
                .get_mut(volume)
                .map(|p| &mut p.helpers),
            ObjectRef::Path { .. } => None,
        }
    }
}

fn device_entry<'r>(
    resource: &'r mut Resource,
    volume: u32,
    changes: &mut Vec<Change>,
) -> &'r mut Device {
    let name = &resource.name;
    resource.devices.entry(volume).or_insert_with(|| {
        changes.push(Change::Created {
            object: ObjectRef::Device {
                resource: name.clone(),
                volume,
            },
        });
        Box::new(Device {
            volume,
            ..Device::default()
        })
    })
}

fn connection_entry<'r>(
    resource: &'r mut Resource,
    conn_name: &str,
    peer_node_id: Option<u32>,
    changes: &mut Vec<Change>,
) -> &'r mut Connection {
    if !resource.connections.contains_key(conn_name) {
        resource.connections.insert(
            conn_name.to_owned(),
            Box::new(Connection {
                conn_name: conn_name.to_owned(),
                ..Connection::default()
            }),
        );
        changes.push(Change::Created {
            object: ObjectRef::Connection {
                resource: resource.name.clone(),
                connection: conn_name.to_owned(),
            },
        });
    }
    // Inserted just above when missing (no entry API: it would allocate the
    // name on every event).
    #[allow(clippy::expect_used)]
    let connection = resource
        .connections
        .get_mut(conn_name)
        .expect("connection present");
    if peer_node_id.is_some() && connection.peer_node_id != peer_node_id {
        connection.peer_node_id = peer_node_id;
    }
    connection
}

fn peer_device_entry<'c>(
    resource: &str,
    connection: &'c mut Connection,
    volume: u32,
    changes: &mut Vec<Change>,
) -> &'c mut PeerDevice {
    let conn_name = &connection.conn_name;
    connection.peer_devices.entry(volume).or_insert_with(|| {
        changes.push(Change::Created {
            object: ObjectRef::PeerDevice {
                resource: resource.to_owned(),
                connection: conn_name.clone(),
                volume,
            },
        });
        Box::new(PeerDevice {
            volume,
            ..PeerDevice::default()
        })
    })
}

fn path_entry<'c>(
    resource: &str,
    connection: &'c mut Connection,
    local: &str,
    peer: &str,
    changes: &mut Vec<Change>,
) -> &'c mut Path {
    let index = match connection
        .paths
        .iter()
        .position(|p| p.local == local && p.peer == peer)
    {
        Some(index) => index,
        None => {
            connection.paths.push(Path {
                local: local.to_owned(),
                peer: peer.to_owned(),
                ..Path::default()
            });
            changes.push(Change::Created {
                object: ObjectRef::Path {
                    resource: resource.to_owned(),
                    connection: connection.conn_name.clone(),
                    local: local.to_owned(),
                    peer: peer.to_owned(),
                },
            });
            connection.paths.len() - 1
        }
    };
    &mut connection.paths[index]
}

fn apply_resource_field(resource: &mut Resource, field: &Field<'_>) -> bool {
    match field {
        Field::Role(value) => set(&mut resource.role, value.clone()),
        Field::Suspended(value) => set(&mut resource.suspended, value.clone()),
        Field::ForceIoFailures(value) => set(&mut resource.force_io_failures, value.clone()),
        Field::WriteOrdering(value) => set(&mut resource.write_ordering, value.clone()),
        Field::MayPromote(value) => set(&mut resource.may_promote, value.clone()),
        Field::Counter(Counter::PromotionScore, value) => {
            set(&mut resource.promotion_score, *value)
        }
        other => keep_unknown(&mut resource.unknown, other),
    }
}

fn apply_device_field(device: &mut Device, field: &Field<'_>) -> bool {
    let stats = &mut device.stats;
    match field {
        Field::BackingDev(value) => {
            if device.backing_dev.as_deref() == Some(*value) {
                return false;
            }
            device.backing_dev = Some((*value).to_owned());
            true
        }
        Field::Disk(value) => set(&mut device.disk, value.clone()),
        Field::Client(value) => set(&mut device.client, value.clone()),
        Field::Open(value) => set(&mut device.open, value.clone()),
        Field::Quorum(value) => set(&mut device.quorum, value.clone()),
        Field::AlSuspended(value) => set(&mut stats.al_suspended, value.clone()),
        Field::Blocked(value) => set(&mut stats.blocked, value.clone()),
        Field::Counter(counter, value) => {
            let slot = match counter {
                Counter::Size => &mut stats.size,
                Counter::Read => &mut stats.read,
                Counter::Written => &mut stats.written,
                Counter::AlWrites => &mut stats.al_writes,
                Counter::BmWrites => &mut stats.bm_writes,
                Counter::UpperPending => &mut stats.upper_pending,
                Counter::LowerPending => &mut stats.lower_pending,
                _ => return keep_unknown(&mut device.unknown, field),
            };
            set(slot, *value)
        }
        other => keep_unknown(&mut device.unknown, other),
    }
}

fn apply_connection_field(connection: &mut Connection, field: &Field<'_>) -> bool {
    match field {
        Field::Connection(value) => {
            let changed = set(&mut connection.connection, value.clone());
            // sync-state is printed only while StandAlone after a split brain.
            if changed && connection.sync_state.is_some() {
                connection.sync_state = None;
            }
            changed
        }
        Field::Role(value) => set(&mut connection.peer_role, value.clone()),
        Field::Congested(value) => set(&mut connection.congested, value.clone()),
        Field::SyncState(value) => set(&mut connection.sync_state, value.clone()),
        Field::Counter(Counter::ApInFlight, value) => set(&mut connection.ap_in_flight, *value),
        Field::Counter(Counter::RsInFlight, value) => set(&mut connection.rs_in_flight, *value),
        other => keep_unknown(&mut connection.unknown, other),
    }
}

fn apply_peer_device_field(peer_device: &mut PeerDevice, field: &Field<'_>) -> bool {
    let stats = &mut peer_device.stats;
    match field {
        Field::Replication(value) => set(&mut peer_device.replication, value.clone()),
        Field::PeerDisk(value) => set(&mut peer_device.peer_disk, value.clone()),
        Field::PeerClient(value) => set(&mut peer_device.peer_client, value.clone()),
        Field::ResyncSuspended(value) => set(&mut peer_device.resync_suspended, value.clone()),
        Field::Eta(value) => set(&mut stats.eta, *value),
        Field::Rate(rate, value) => {
            let slot = match rate {
                Rate::Done => &mut peer_device.done,
                Rate::Dbdt1 => &mut stats.dbdt1,
                Rate::Want => &mut stats.want,
                Rate::Dbdt => &mut stats.dbdt,
                Rate::Dbdt0 => &mut stats.dbdt0,
            };
            set(slot, *value)
        }
        Field::Counter(counter, value) => {
            let slot = match counter {
                Counter::Received => &mut stats.received,
                Counter::Sent => &mut stats.sent,
                Counter::OutOfSync => &mut stats.out_of_sync,
                Counter::Pending => &mut stats.pending,
                Counter::Unacked => &mut stats.unacked,
                Counter::RsTotal => &mut stats.rs_total,
                Counter::RsDtStartMs => &mut stats.rs_dt_start_ms,
                Counter::RsPausedMs => &mut stats.rs_paused_ms,
                Counter::RsDt0Ms => &mut stats.rs_dt0_ms,
                Counter::RsDb0Sectors => &mut stats.rs_db0_sectors,
                Counter::RsDt1Ms => &mut stats.rs_dt1_ms,
                Counter::RsDb1Sectors => &mut stats.rs_db1_sectors,
                Counter::RsFailed => &mut stats.rs_failed,
                Counter::RsSameCsum => &mut stats.rs_same_csum,
                Counter::OvStartSector => &mut stats.ov_start_sector,
                Counter::OvStopSector => &mut stats.ov_stop_sector,
                Counter::OvPosition => &mut stats.ov_position,
                Counter::OvLeft => &mut stats.ov_left,
                Counter::OvSkipped => &mut stats.ov_skipped,
                _ => return keep_unknown(&mut peer_device.unknown, field),
            };
            set(slot, *value)
        }
        other => keep_unknown(&mut peer_device.unknown, other),
    }
}

/// Progress and speed exist only while a resync or verify runs: once the
/// replication state says none does, they are cleared (drbdsetup stops
/// printing them, it does not print a final value).
fn clear_resync_details(peer_device: &mut PeerDevice) -> bool {
    let running = match &peer_device.replication {
        Some(state) => state.is_resync() || state.is_verify() || !state.is_known(),
        None => true,
    };
    if running {
        return false;
    }
    let stats = &mut peer_device.stats;
    let mut changed = false;
    changed |= peer_device.done.take().is_some();
    for slot in [
        &mut stats.dbdt1,
        &mut stats.want,
        &mut stats.dbdt,
        &mut stats.dbdt0,
    ] {
        changed |= slot.take().is_some();
    }
    changed |= stats.eta.take().is_some();
    for slot in [
        &mut stats.rs_total,
        &mut stats.rs_dt_start_ms,
        &mut stats.rs_paused_ms,
        &mut stats.rs_dt0_ms,
        &mut stats.rs_db0_sectors,
        &mut stats.rs_dt1_ms,
        &mut stats.rs_db1_sectors,
        &mut stats.rs_failed,
        &mut stats.rs_same_csum,
        &mut stats.ov_start_sector,
        &mut stats.ov_stop_sector,
        &mut stats.ov_position,
        &mut stats.ov_left,
        &mut stats.ov_skipped,
    ] {
        changed |= slot.take().is_some();
    }
    changed
}
