//! The watcher driver: an rtnetlink socket subscribed to link and address
//! changes, a full dump at start and after every receive-buffer overrun,
//! statistics dumps for the traffic rates, and the join with the DRBD model.
//! A socket error ends the session; a new one starts after a backoff.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::{new_multicast_connection, Handle, MulticastGroup};
use tokio::sync::RwLock;
use tracing::{info, warn};

use super::convert::{address_of, link_of, link_speed};
use super::table::Table;
use super::tracker::{ConnView, NetworkStatus, Tracker};
use crate::backoff::{Backoff, BackoffPolicy};
use crate::events2::ConnectionState;
use crate::runtime::CancellationToken;
use crate::runtime::Shared;

/// The status the API and the exporter read. Replaced whole on a change
/// (never edited in place), so a reader that kept the `Arc` it saw tells a
/// change by pointer (the exporter re-renders the per-path families only
/// then).
pub(crate) type SharedNetwork = Arc<RwLock<Arc<NetworkStatus>>>;

/// How often the links are dumped again for their statistics (this also
/// catches any change a lost notification would hide).
const STATS_EVERY: Duration = Duration::from_secs(2);

/// How often the DRBD model is looked at for connection changes.
const OBSERVE_EVERY: Duration = Duration::from_millis(250);

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WatchError {
    #[error("cannot open the rtnetlink socket: {0}")]
    Open(std::io::Error),
    #[error("netlink dump failed: {0}")]
    Dump(rtnetlink::Error),
    #[error("the rtnetlink socket closed")]
    Closed,
}

/// Runs until `stop`, reopening the socket with backoff after errors.
pub(crate) async fn watch_network(
    shared: Arc<Shared>,
    out: SharedNetwork,
    stop: CancellationToken,
) {
    let mut tracker = Tracker::new();
    let mut backoff = Backoff::new(BackoffPolicy {
        initial: Duration::from_millis(500),
        max: Duration::from_secs(30),
        stable_after: Duration::from_secs(30),
    });
    loop {
        let started = Instant::now();
        let result = tokio::select! {
            r = session(&shared, &out, &mut tracker) => r,
            _ = stop.cancelled() => return,
        };
        let error = match result {
            Ok(()) => WatchError::Closed,
            Err(e) => e,
        };
        if started.elapsed() >= backoff.policy().stable_after {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        warn!(error = %error, retry_in = ?delay, "network watcher stopped, reopening");
        tracker.watcher_mut().running = false;
        tracker.watcher_mut().last_error = Some(error.to_string());
        *out.write().await = Arc::new(tracker.status().clone());
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// One socket's life: subscribe, dump, follow.
async fn session(
    shared: &Shared,
    out: &SharedNetwork,
    tracker: &mut Tracker,
) -> Result<(), WatchError> {
    let (connection, handle, mut messages) = new_multicast_connection(&[
        MulticastGroup::Link,
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv6Ifaddr,
    ])
    .map_err(WatchError::Open)?;
    let driver = tokio::spawn(connection);
    // Subscribed first, dumped second: nothing falls between the two.
    let mut table = Table::new();
    let result = async {
        dump(&handle, &mut table).await?;
        tracker.watcher_mut().dumps += 1;
        tracker.watcher_mut().running = true;
        tracker.watcher_mut().last_error = None;
        tracker.sample_stats(&table, Instant::now());
        info!(links = table.links().count(), "network watcher running");
        let mut stats = tokio::time::interval(STATS_EVERY);
        let mut observe = tokio::time::interval(OBSERVE_EVERY);
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some((message, _)) = message else {
                        return Err(WatchError::Closed);
                    };
                    match message.payload {
                        NetlinkPayload::Overrun(_) => {
                            warn!("netlink receive buffer overrun, dumping again");
                            tracker.watcher_mut().overruns += 1;
                            dump(&handle, &mut table).await?;
                            tracker.watcher_mut().dumps += 1;
                        }
                        NetlinkPayload::InnerMessage(inner) => apply(&mut table, inner),
                        _ => {}
                    }
                }
                _ = stats.tick() => {
                    dump(&handle, &mut table).await?;
                    tracker.sample_stats(&table, Instant::now());
                }
                _ = observe.tick() => {
                    let conns = connection_views(shared).await;
                    tracker.observe(&table, &conns, Instant::now(), chrono::Utc::now(), link_speed);
                    // Most observations change nothing: no copy, no write lock.
                    let changed = **out.read().await != *tracker.status();
                    if changed {
                        *out.write().await = Arc::new(tracker.status().clone());
                    }
                }
            }
        }
    }
    .await;
    driver.abort();
    result
}

/// One notification applied to the table.
fn apply(table: &mut Table, message: RouteNetlinkMessage) {
    let now = Instant::now();
    match message {
        RouteNetlinkMessage::NewLink(m) => {
            if let Some(link) = link_of(&m) {
                table.upsert_link(link, now);
            }
        }
        RouteNetlinkMessage::DelLink(m) => table.remove_link(m.header.index, now),
        RouteNetlinkMessage::NewAddress(m) => {
            if let Some((ip, index)) = address_of(&m) {
                table.add_address(ip, index);
            }
        }
        RouteNetlinkMessage::DelAddress(m) => {
            if let Some((ip, _)) = address_of(&m) {
                table.remove_address(ip, now);
            }
        }
        _ => {}
    }
}

/// A full dump of links and addresses into `table`.
async fn dump(handle: &Handle, table: &mut Table) -> Result<(), WatchError> {
    let mut links = Vec::new();
    let mut stream = handle.link().get().execute();
    while let Some(message) = stream.next().await {
        if let Some(link) = link_of(&message.map_err(WatchError::Dump)?) {
            links.push(link);
        }
    }
    let mut addresses = Vec::new();
    let mut stream = handle.address().get().execute();
    while let Some(message) = stream.next().await {
        if let Some(address) = address_of(&message.map_err(WatchError::Dump)?) {
            addresses.push(address);
        }
    }
    table.replace(links, addresses, Instant::now());
    Ok(())
}

/// The connections of the model, with their paths' local addresses.
async fn connection_views(shared: &Shared) -> Vec<ConnView> {
    let state = shared.state.read().await;
    let mut out = Vec::new();
    for resource in state.model.resources().values() {
        for connection in resource.connections.values() {
            out.push(ConnView {
                name: resource.name.clone(),
                conn_name: connection.conn_name.clone(),
                peer_node_id: connection.peer_node_id,
                connected: connection.connection == Some(ConnectionState::Connected),
                locals: connection.paths.iter().map(|p| p.local.clone()).collect(),
            });
        }
    }
    out
}
