//! Serving the router on TCP listeners with hyper's HTTP/1 server.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tower::ServiceExt;
use tracing::{debug, info, warn};

use super::deadline::{ApiCounters, ClientAddr, ClientConnections, WriteDeadline};
use super::gate::WebGate;
use crate::runtime::CancellationToken;

/// Linux `EAFNOSUPPORT`: the kernel has no IPv6.
const EAFNOSUPPORT: i32 = 97;

/// Where the kernel says whether IPv6 is switched off.
const DISABLE_IPV6: &str = "/proc/sys/net/ipv6/conf/all/disable_ipv6";

/// Connection-level limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time a client has to send the request head.
    pub header_read_timeout: Duration,
    /// Read buffer size, which bounds the request head (hyper's minimum is 8 KiB).
    pub max_header_bytes: usize,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// Time open connections get to finish on shutdown.
    pub shutdown_grace: Duration,
    /// Time a write may make no progress (a client that stops reading)
    /// before the connection is cut and its slot freed.
    pub write_timeout: Duration,
    /// Connections one client address may hold at once (below
    /// `max_connections`, so one address cannot take every slot); more are
    /// closed right after accepting.
    pub max_connections_per_client: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_connections: 128,
            shutdown_grace: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            max_connections_per_client: 32,
        }
    }
}

/// A listen address that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct ApiError {
    pub addr: SocketAddr,
    pub source: io::Error,
}

/// `[::]:P` → `0.0.0.0:P`; other addresses have no fallback.
pub fn fallback_addr(addr: SocketAddr) -> Option<SocketAddr> {
    match addr.ip() {
        IpAddr::V6(ip) if ip.is_unspecified() => Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            addr.port(),
        )),
        _ => None,
    }
}

/// The bind error a kernel without IPv6 gives.
pub fn is_no_ipv6_error(error: &io::Error) -> bool {
    error.raw_os_error() == Some(EAFNOSUPPORT) || error.kind() == io::ErrorKind::AddrNotAvailable
}

fn ipv6_disabled() -> bool {
    match std::fs::read_to_string(DISABLE_IPV6) {
        Ok(text) => text.trim() == "1",
        // No such file: no IPv6 in this kernel.
        Err(_) => !std::path::Path::new("/proc/sys/net/ipv6").exists(),
    }
}

/// Binds every address; `[::]:P` falls back to `0.0.0.0:P` when IPv6 is off.
pub async fn bind(addrs: &[SocketAddr]) -> Result<Vec<TcpListener>, ApiError> {
    let mut listeners = Vec::new();
    for &addr in addrs {
        let fallback = fallback_addr(addr);
        let target = match fallback {
            Some(v4) if ipv6_disabled() => {
                info!(%addr, fallback = %v4, "IPv6 disabled, listening on IPv4");
                v4
            }
            _ => addr,
        };
        let listener = match TcpListener::bind(target).await {
            Ok(listener) => listener,
            Err(e) if target == addr && is_no_ipv6_error(&e) && fallback.is_some() => {
                let v4 = fallback.unwrap_or(addr);
                info!(%addr, fallback = %v4, error = %e, "no IPv6, listening on IPv4");
                TcpListener::bind(v4)
                    .await
                    .map_err(|source| ApiError { addr: v4, source })?
            }
            Err(source) => {
                return Err(ApiError {
                    addr: target,
                    source,
                })
            }
        };
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Serves `router` on `listener` until `shutdown`; the task ends after open
/// connections finished or had their grace time.
pub fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    serve_prepared(listener, router, limits, shutdown, |stream, _| async move {
        Some(stream)
    })
}

/// [`serve`] behind `gate`: TLS when the web config in force says so (read
/// per connection, so a reload takes effect for new connections). The
/// router should carry [`super::guard`] for the authentication part.
pub fn serve_gated(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
    gate: Arc<WebGate>,
) -> JoinHandle<()> {
    let handshake_timeout = limits.header_read_timeout;
    let counters = gate.counters.clone();
    serve_counted(
        listener,
        router,
        limits,
        shutdown,
        move |stream, peer| gate.clone().prepare(stream, peer, handshake_timeout),
        counters,
    )
}

/// [`serve`], with each accepted stream first turned into the connection's
/// transport by `prepare` (e.g. a TLS handshake; `None` drops the stream).
/// `prepare` runs in the connection's task, holding its connection slot.
pub fn serve_prepared<P, Fut, Io>(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
    prepare: P,
) -> JoinHandle<()>
where
    P: Fn(TcpStream, SocketAddr) -> Fut + Send + 'static,
    Fut: Future<Output = Option<Io>> + Send + 'static,
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    serve_counted(
        listener,
        router,
        limits,
        shutdown,
        prepare,
        Arc::new(ApiCounters::default()),
    )
}

/// [`serve_prepared`], counting refusals and cuts in `counters`.
fn serve_counted<P, Fut, Io>(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
    prepare: P,
    counters: Arc<ApiCounters>,
) -> JoinHandle<()>
where
    P: Fn(TcpStream, SocketAddr) -> Fut + Send + 'static,
    Fut: Future<Output = Option<Io>> + Send + 'static,
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(limits.max_connections));
        let per_client = Arc::new(ClientConnections::default());
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    // The semaphore is never closed.
                    Err(_) => break,
                },
                _ = shutdown.cancelled() => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // E.g. out of file descriptors: wait a little, do not spin.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = shutdown.cancelled() => break,
            };
            let Some(client_slot) = per_client.take(peer.ip(), limits.max_connections_per_client)
            else {
                // Dropping the stream closes it; the global slot is kept free.
                ApiCounters::count(&counters.per_client_cap);
                debug!(%peer, limit = limits.max_connections_per_client, "connection refused: this address holds its share of connections");
                continue;
            };
            let _ = stream.set_nodelay(true);
            let prepared = prepare(stream, peer);
            let client = ClientAddr(peer);
            let service = TowerToHyperService::new(router.clone().map_request(
                move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(client);
                    request
                },
            ));
            let stop = shutdown.clone();
            let connection_counters = counters.clone();
            connections.spawn(async move {
                let _permit = permit;
                let _client_slot = client_slot;
                let Some(stream) = prepared.await else {
                    return;
                };
                let stream =
                    WriteDeadline::new(stream, limits.write_timeout).counting(connection_counters);
                let mut builder = http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.header_read_timeout)
                    .max_buf_size(limits.max_header_bytes);
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                let mut connection = std::pin::pin!(connection);
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(e) = result {
                            debug!(%peer, error = %e, "connection ended with an error");
                        }
                    }
                    _ = stop.cancelled() => {
                        connection.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(limits.shutdown_grace, connection).await;
                    }
                }
            });
            // Reap finished connection tasks so the set stays small.
            while connections.try_join_next().is_some() {}
        }
        let _ = tokio::time::timeout(limits.shutdown_grace, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_only_for_v6_any() {
        let any6: SocketAddr = "[::]:9943".parse().unwrap();
        assert_eq!(fallback_addr(any6), Some("0.0.0.0:9943".parse().unwrap()));
        assert_eq!(fallback_addr("[::1]:9943".parse().unwrap()), None);
        assert_eq!(fallback_addr("0.0.0.0:9943".parse().unwrap()), None);
    }

    #[test]
    fn no_ipv6_errors() {
        assert!(is_no_ipv6_error(&io::Error::from_raw_os_error(
            EAFNOSUPPORT
        )));
        assert!(is_no_ipv6_error(&io::Error::from(
            io::ErrorKind::AddrNotAvailable
        )));
        assert!(!is_no_ipv6_error(&io::Error::from(
            io::ErrorKind::AddrInUse
        )));
    }
}
