//! Model → events2 lines, exactly as drbdsetup prints them.
//!
//! The simulator keeps one [`Resource`] per node and resource; each kernel
//! state change is a batch that turns an old copy into a new one, and
//! [`batch`] prints the lines drbdsetup prints for it.
//!
//! The rules follow drbd-utils' `drbdsetup_events2.c` (which groups of keys
//! print when) and `drbdsetup.c` (the statistics); where they and the
//! recorded transcripts disagree, the transcripts win. A field the model has
//! never seen (`None`) is left out of a line rather than invented, except
//! `backing_dev`, which drbdsetup prints as `none` when there is none.

use std::fmt::{Display, Write as _};

use chrono::{DateTime, FixedOffset, Timelike};

use crate::events2::ConnectionState;
use crate::state::{Connection, Device, Path, PeerDevice, Resource};

/// The drbdsetup flags that change what is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FormatOptions {
    /// `--statistics` given once (1) or twice (2); `--full` implies at least 1.
    pub statistics: u8,
    /// `--full`: every group on every change line.
    pub full: bool,
}

impl FormatOptions {
    /// The statistics level in effect (`--full` implies `--statistics`).
    pub fn statistics_level(&self) -> u8 {
        if self.full {
            self.statistics.max(1)
        } else {
            self.statistics
        }
    }
}

/// What kind of batch is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    /// Part of the initial dump: new objects print as `exists`.
    InitialDump,
    /// After `exists -`: new objects print as `create`.
    Live,
}

impl BatchKind {
    fn new_action(self) -> &'static str {
        match self {
            BatchKind::InitialDump => "exists",
            BatchKind::Live => "create",
        }
    }
}

/// Everything one line of a batch needs besides the objects.
struct Printer<'a> {
    prefix: &'a str,
    new_action: &'static str,
    level: u8,
    full: bool,
    out: &'a mut String,
}

impl Printer<'_> {
    /// Starts a line: prefix, action (`change` for known objects) and object.
    fn start(&mut self, is_new: bool, object: &str) {
        let action = if is_new { self.new_action } else { "change" };
        self.begin(action, object);
    }

    fn begin(&mut self, action: &str, object: &str) {
        self.out.push_str(self.prefix);
        self.out.push_str(action);
        self.out.push(' ');
        self.out.push_str(object);
    }

    fn field(&mut self, key: &str, value: impl Display) {
        // Writing to a String cannot fail.
        let _ = write!(self.out, " {key}:{value}");
    }

    fn opt<T: Display>(&mut self, key: &str, value: Option<&T>) {
        if let Some(value) = value {
            self.field(key, value);
        }
    }

    fn opt_num(&mut self, key: &str, value: Option<u64>) {
        if let Some(value) = value {
            self.field(key, value);
        }
    }

    fn opt_rate(&mut self, key: &str, value: Option<f64>) {
        if let Some(value) = value {
            self.field(key, format_args!("{value:.2}"));
        }
    }

    fn end(&mut self) {
        self.out.push('\n');
    }
}

/// Appends to `out` the lines drbdsetup prints for one batch that turned
/// `old` into `new` (`old` = None: the resource is new; `new` = None: it was
/// destroyed). `prefix` is the timestamp prefix (see [`timestamp_prefix`]) or "".
///
/// Destroyed connections print the destroy lines of their paths and peer
/// devices first (children before parents), so that the output alone takes
/// a model from `old` to `new`.
pub fn batch(
    old: Option<&Resource>,
    new: Option<&Resource>,
    kind: BatchKind,
    options: &FormatOptions,
    prefix: &str,
    out: &mut String,
) {
    let Some(name) = new.or(old).map(|r| r.name.as_str()) else {
        return;
    };
    let mut p = Printer {
        prefix,
        new_action: kind.new_action(),
        level: options.statistics_level(),
        full: options.full,
        out,
    };
    let empty = Resource::default();
    let target = new.unwrap_or(&empty);

    if let Some(new) = new {
        resource_line(&mut p, old, new);
        for connection in ordered_connections(new) {
            let before = old
                .and_then(|o| o.connections.get(&connection.conn_name))
                .map(|c| &**c);
            connection_line(&mut p, name, before, connection);
        }
        for device in new.devices.values().rev() {
            let before = old
                .and_then(|o| o.devices.get(&device.volume))
                .map(|d| &**d);
            device_line(&mut p, name, before, device);
        }
    }
    for connection in ordered_connections(target) {
        let before = old
            .and_then(|o| o.connections.get(&connection.conn_name))
            .map(|c| &**c);
        for peer_device in connection.peer_devices.values().rev() {
            let was = before
                .and_then(|c| c.peer_devices.get(&peer_device.volume))
                .map(|pd| &**pd);
            peer_device_line(&mut p, name, connection, was, peer_device);
        }
        for path in &connection.paths {
            let was = before.and_then(|c| find_path(c, path));
            path_line(&mut p, name, connection, was, path);
        }
        if let Some(before) = before {
            destroy_children(&mut p, name, before, Some(connection));
        }
    }
    let gone: Vec<&Connection> = old
        .map(ordered_connections)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| !target.connections.contains_key(&c.conn_name))
        .collect();
    for connection in &gone {
        destroy_children(&mut p, name, connection, None);
    }
    for connection in &gone {
        p.begin("destroy", "connection");
        connection_identity(&mut p, name, connection);
        p.end();
    }
    for device in old.map(|o| o.devices.values().rev()).into_iter().flatten() {
        if !target.devices.contains_key(&device.volume) {
            p.begin("destroy", "device");
            p.field("name", name);
            p.field("volume", device.volume);
            p.end();
        }
    }
    if new.is_none() {
        p.begin("destroy", "resource");
        p.field("name", name);
        p.end();
    }
}

/// Connections in the order drbdsetup prints them: the reverse of the
/// kernel's order, taken as descending peer-node-id (then conn-name).
fn ordered_connections(resource: &Resource) -> Vec<&Connection> {
    let mut connections: Vec<&Connection> = resource.connections.values().map(|c| &**c).collect();
    connections.sort_by(|a, b| (b.peer_node_id, &b.conn_name).cmp(&(a.peer_node_id, &a.conn_name)));
    connections
}

fn find_path<'c>(connection: &'c Connection, path: &Path) -> Option<&'c Path> {
    connection
        .paths
        .iter()
        .find(|p| p.local == path.local && p.peer == path.peer)
}

/// Destroy lines for the paths and peer devices of `before` that `after`
/// (None: the connection itself is gone) no longer has.
fn destroy_children(
    p: &mut Printer<'_>,
    name: &str,
    before: &Connection,
    after: Option<&Connection>,
) {
    for path in &before.paths {
        if after.and_then(|a| find_path(a, path)).is_none() {
            p.begin("destroy", "path");
            connection_identity(p, name, before);
            p.field("local", &path.local);
            p.field("peer", &path.peer);
            p.end();
        }
    }
    for peer_device in before.peer_devices.values().rev() {
        if after.is_none_or(|a| !a.peer_devices.contains_key(&peer_device.volume)) {
            p.begin("destroy", "peer-device");
            connection_identity(p, name, before);
            p.field("volume", peer_device.volume);
            p.end();
        }
    }
}

fn connection_identity(p: &mut Printer<'_>, name: &str, connection: &Connection) {
    p.field("name", name);
    p.opt_num("peer-node-id", connection.peer_node_id.map(u64::from));
    p.field("conn-name", &connection.conn_name);
}

fn resource_line(p: &mut Printer<'_>, old: Option<&Resource>, new: &Resource) {
    let is_new = old.is_none();
    let differs = |f: &dyn Fn(&Resource) -> bool| old.is_none_or(f);
    let role = differs(&|o| o.role != new.role);
    let suspended = differs(&|o| o.suspended != new.suspended);
    let fail_io = differs(&|o| o.force_io_failures != new.force_io_failures);
    let ordering = p.level >= 1 && differs(&|o| o.write_ordering != new.write_ordering);
    let promotion =
        differs(&|o| o.may_promote != new.may_promote || o.promotion_score != new.promotion_score);
    if !(role || suspended || fail_io || ordering || promotion) {
        return;
    }
    p.start(is_new, "resource");
    p.field("name", &new.name);
    if role || p.full {
        p.opt("role", new.role.as_ref());
    }
    if suspended || p.full {
        p.opt("suspended", new.suspended.as_ref());
    }
    if fail_io || p.full {
        p.opt("force-io-failures", new.force_io_failures.as_ref());
    }
    if (ordering || p.full) && p.level >= 1 {
        p.opt("write-ordering", new.write_ordering.as_ref());
    }
    if promotion || p.full {
        p.opt("may_promote", new.may_promote.as_ref());
        p.opt_num("promotion_score", new.promotion_score);
    }
    p.end();
}

fn connection_line(p: &mut Printer<'_>, name: &str, old: Option<&Connection>, new: &Connection) {
    let is_new = old.is_none();
    let differs = |f: &dyn Fn(&Connection) -> bool| old.is_none_or(f);
    let state = differs(&|o| o.connection != new.connection);
    let role = differs(&|o| o.peer_role != new.peer_role);
    let congested = differs(&|o| o.congested != new.congested);
    let stats = p.level >= 1
        && (congested
            || differs(&|o| {
                o.ap_in_flight != new.ap_in_flight || o.rs_in_flight != new.rs_in_flight
            }));
    if !(state || role || stats) {
        return;
    }
    p.start(is_new, "connection");
    connection_identity(p, name, new);
    if state || p.full {
        p.opt("connection", new.connection.as_ref());
    }
    if role || p.full {
        p.opt("role", new.peer_role.as_ref());
    }
    if new.connection == Some(ConnectionState::StandAlone) {
        p.opt("sync-state", new.sync_state.as_ref());
    }
    if (stats || p.full) && p.level >= 1 {
        if congested || p.full {
            p.opt("congested", new.congested.as_ref());
        }
        p.opt_num("ap-in-flight", new.ap_in_flight);
        p.opt_num("rs-in-flight", new.rs_in_flight);
    }
    p.end();
}

fn device_line(p: &mut Printer<'_>, name: &str, old: Option<&Device>, new: &Device) {
    let is_new = old.is_none();
    let differs = |f: &dyn Fn(&Device) -> bool| old.is_none_or(f);
    let info = differs(&|o| o.disk != new.disk || o.quorum != new.quorum || o.open != new.open);
    let stats = p.level >= 1 && differs(&|o| o.stats != new.stats);
    if !(info || stats) {
        return;
    }
    p.start(is_new, "device");
    p.field("name", name);
    p.field("volume", new.volume);
    p.opt_num("minor", new.minor.map(u64::from));
    if info || p.full {
        p.field("backing_dev", new.backing_dev.as_deref().unwrap_or("none"));
        p.opt("disk", new.disk.as_ref());
        p.opt("client", new.client.as_ref());
        p.opt("open", new.open.as_ref());
        p.opt("quorum", new.quorum.as_ref());
    }
    if (stats || p.full) && p.level >= 1 {
        let s = &new.stats;
        p.opt_num("size", s.size);
        p.opt_num("read", s.read);
        p.opt_num("written", s.written);
        p.opt_num("al-writes", s.al_writes);
        p.opt_num("bm-writes", s.bm_writes);
        p.opt_num("upper-pending", s.upper_pending);
        p.opt_num("lower-pending", s.lower_pending);
        if p.full || differs(&|o| o.stats.al_suspended != s.al_suspended) {
            p.opt("al-suspended", s.al_suspended.as_ref());
        }
        // `blocked` is not forced by --full.
        if differs(&|o| o.stats.blocked != s.blocked) {
            p.opt("blocked", s.blocked.as_ref());
        }
    }
    p.end();
}

fn peer_device_line(
    p: &mut Printer<'_>,
    name: &str,
    connection: &Connection,
    old: Option<&PeerDevice>,
    new: &PeerDevice,
) {
    let is_new = old.is_none();
    let differs = |f: &dyn Fn(&PeerDevice) -> bool| old.is_none_or(f);
    let replication = differs(&|o| o.replication != new.replication);
    let disk = differs(&|o| o.peer_disk != new.peer_disk || o.peer_client != new.peer_client);
    let suspended = differs(&|o| o.resync_suspended != new.resync_suspended);
    // Not gated by --statistics: a statistics-only change prints a line
    // without fields when -s is not given.
    let stats = differs(&|o| o.done != new.done || o.stats != new.stats);
    if !(replication || disk || suspended || stats) {
        return;
    }
    p.start(is_new, "peer-device");
    connection_identity(p, name, connection);
    p.field("volume", new.volume);
    if replication || p.full {
        p.opt("replication", new.replication.as_ref());
    }
    if disk || p.full {
        p.opt("peer-disk", new.peer_disk.as_ref());
        p.opt("peer-client", new.peer_client.as_ref());
    }
    if suspended || p.full {
        p.opt("resync-suspended", new.resync_suspended.as_ref());
    }
    if stats || p.full {
        peer_device_statistics(p, new);
    }
    p.end();
}

fn peer_device_statistics(p: &mut Printer<'_>, peer_device: &PeerDevice) {
    let s = &peer_device.stats;
    let resyncing = peer_device.done.is_some();
    p.opt_rate("done", peer_device.done);
    if p.level == 0 {
        return;
    }
    p.opt_num("received", s.received);
    p.opt_num("sent", s.sent);
    p.opt_num("out-of-sync", s.out_of_sync);
    p.opt_num("pending", s.pending);
    p.opt_num("unacked", s.unacked);
    if !resyncing {
        return;
    }
    if p.level >= 2 {
        p.opt_num("rs-total", s.rs_total);
        p.opt_num("rs-dt-start-ms", s.rs_dt_start_ms);
        p.opt_num("rs-paused-ms", s.rs_paused_ms);
        p.opt_num("rs-dt0-ms", s.rs_dt0_ms);
        p.opt_num("rs-db0-sectors", s.rs_db0_sectors);
        p.opt_num("rs-dt1-ms", s.rs_dt1_ms);
        p.opt_num("rs-db1-sectors", s.rs_db1_sectors);
        if s.ov_left.is_some_and(|left| left != 0) {
            p.opt_num("ov-start-sector", s.ov_start_sector);
            p.opt_num("ov-stop-sector", s.ov_stop_sector);
            p.opt_num("ov-position", s.ov_position);
            p.opt_num("ov-left", s.ov_left);
            p.opt_num("ov-skipped", s.ov_skipped);
        } else {
            p.opt_num("rs-failed", s.rs_failed);
            p.opt_num("rs-same-csum", s.rs_same_csum);
        }
        p.opt_rate("want", s.want.filter(|want| *want != 0.0));
        p.opt_rate("dbdt", s.dbdt);
        p.opt_rate("dbdt0", s.dbdt0);
    }
    p.opt_rate("dbdt1", s.dbdt1);
    p.opt("eta", s.eta.as_ref());
}

fn path_line(
    p: &mut Printer<'_>,
    name: &str,
    connection: &Connection,
    old: Option<&Path>,
    new: &Path,
) {
    let is_new = old.is_none();
    if old.is_some_and(|o| o.established == new.established) {
        return;
    }
    p.start(is_new, "path");
    connection_identity(p, name, connection);
    p.field("local", &new.local);
    p.field("peer", &new.peer);
    p.opt("established", new.established.as_ref());
    p.end();
}

/// Appends `exists -`, the end of the initial dump.
pub fn end_of_dump(prefix: &str, out: &mut String) {
    out.push_str(prefix);
    out.push_str("exists -\n");
}

/// Appends `rename resource name:<old> new_name:<new>`.
pub fn rename_line(prefix: &str, old_name: &str, new_name: &str, out: &mut String) {
    out.push_str(prefix);
    // Writing to a String cannot fail.
    let _ = writeln!(out, "rename resource name:{old_name} new_name:{new_name}");
}

/// A helper `call` or `response` line (see [`helper_event`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HelperLine<'a> {
    /// `response` (true) or `call`.
    pub response: bool,
    pub resource: &'a str,
    pub peer_node_id: Option<u32>,
    pub conn_name: Option<&'a str>,
    /// Path addresses (local, peer), for helpers about one path.
    pub addresses: Option<(&'a str, &'a str)>,
    pub volume: Option<u32>,
    pub minor: Option<u32>,
    pub helper: &'a str,
    /// The wait status, printed on responses only.
    pub status: Option<u32>,
}

/// Appends a helper line: `name [peer-node-id] [conn-name] [local peer]
/// [volume] [minor] helper [status]`.
pub fn helper_event(prefix: &str, line: &HelperLine<'_>, out: &mut String) {
    let mut p = Printer {
        prefix,
        new_action: "create",
        level: 0,
        full: false,
        out,
    };
    p.begin(if line.response { "response" } else { "call" }, "helper");
    p.field("name", line.resource);
    p.opt_num("peer-node-id", line.peer_node_id.map(u64::from));
    p.opt("conn-name", line.conn_name.as_ref());
    if let Some((local, peer)) = line.addresses {
        p.field("local", local);
        p.field("peer", peer);
    }
    p.opt_num("volume", line.volume.map(u64::from));
    p.opt_num("minor", line.minor.map(u64::from));
    p.field("helper", line.helper);
    if line.response {
        p.field("status", line.status.unwrap_or_default());
    }
    p.end();
}

/// Appends a helper `call` (`response` = false) or `response` line; the
/// short form of [`helper_event`] without path addresses.
#[allow(clippy::too_many_arguments)]
pub fn helper_line(
    prefix: &str,
    response: bool,
    resource: &str,
    peer_node_id: Option<u32>,
    conn_name: Option<&str>,
    volume: Option<u32>,
    minor: Option<u32>,
    helper: &str,
    status: Option<u32>,
    out: &mut String,
) {
    let line = HelperLine {
        response,
        resource,
        peer_node_id,
        conn_name,
        addresses: None,
        volume,
        minor,
        helper,
        status,
    };
    helper_event(prefix, &line, out);
}

/// The `--timestamps` prefix for a moment, with its trailing space:
/// `YYYY-MM-DDTHH:MM:SS.uuuuuu+HH:MM `.
///
/// The offset is printed the way drbdsetup does: hours truncated with their
/// sign (`+00` for offsets between -1 h and 0), minutes without a sign.
pub fn timestamp_prefix(at: DateTime<FixedOffset>) -> String {
    let offset = at.offset().local_minus_utc();
    let hours = offset / 3600;
    let minutes = (offset.abs() / 60) % 60;
    format!(
        "{}.{:06}{:+03}:{:02} ",
        at.format("%Y-%m-%dT%H:%M:%S"),
        at.nanosecond() % 1_000_000_000 / 1000,
        hours,
        minutes
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_implies_statistics() {
        let full = FormatOptions {
            statistics: 0,
            full: true,
        };
        assert_eq!(full.statistics_level(), 1);
        let twice = FormatOptions {
            statistics: 2,
            full: true,
        };
        assert_eq!(twice.statistics_level(), 2);
        assert_eq!(FormatOptions::default().statistics_level(), 0);
    }

    #[test]
    fn connections_order_by_peer_node_id_then_name_descending() {
        let mut resource = Resource::default();
        for (name, id) in [("a", Some(1)), ("b", Some(3)), ("c", None), ("d", None)] {
            let connection = Connection {
                conn_name: name.to_owned(),
                peer_node_id: id,
                ..Connection::default()
            };
            resource
                .connections
                .insert(name.to_owned(), Box::new(connection));
        }
        let order: Vec<&str> = ordered_connections(&resource)
            .iter()
            .map(|c| c.conn_name.as_str())
            .collect();
        assert_eq!(order, ["b", "a", "d", "c"]);
    }
}
