//! Limits on what one client can hold: a deadline on writes that make no
//! progress, and a count of connections per client address.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Connections and requests the API refused or cut, by reason (rendered
/// as `drbd_agent_api_refused_total{reason}`).
#[derive(Debug, Default)]
pub struct ApiCounters {
    /// 401: no or wrong basic-auth credentials.
    pub unauthorized: AtomicU64,
    /// 403: `/v1/status` from a non-loopback client with `status = "local"`.
    pub status_not_local: AtomicU64,
    /// TLS handshakes that failed or timed out.
    pub tls_handshake: AtomicU64,
    /// Connections closed at once: the address held its share.
    pub per_client_cap: AtomicU64,
    /// Connections cut: a write made no progress for the write timeout.
    pub write_timeout: AtomicU64,
}

impl ApiCounters {
    /// `(reason label, count)` in label order.
    pub fn snapshot(&self) -> [(&'static str, u64); 5] {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("per-client-cap", get(&self.per_client_cap)),
            ("status-not-local", get(&self.status_not_local)),
            ("tls-handshake", get(&self.tls_handshake)),
            ("unauthorized", get(&self.unauthorized)),
            ("write-timeout", get(&self.write_timeout)),
        ]
    }

    pub(crate) fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The client's address, put into every request's extensions by the
/// connection loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

impl ClientAddr {
    /// A loopback client (`127.0.0.0/8`, `::1`, `::ffff:127.x.y.z`).
    pub fn is_loopback(&self) -> bool {
        self.0.ip().to_canonical().is_loopback()
    }
}

/// Open connections by client address.
#[derive(Debug, Default)]
pub struct ClientConnections {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection of `ip`, counted until dropped.
#[derive(Debug)]
pub struct ClientSlot {
    owner: Arc<ClientConnections>,
    ip: IpAddr,
}

impl ClientConnections {
    /// A slot for `ip`, unless it already holds `cap` connections.
    pub fn take(self: &Arc<Self>, ip: IpAddr, cap: usize) -> Option<ClientSlot> {
        let ip = ip.to_canonical();
        // A poisoned lock only means a holder panicked; the map is still whole.
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(ip).or_default();
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            owner: self.clone(),
            ip,
        })
    }

    /// Connections `ip` holds now.
    pub fn held_by(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&ip.to_canonical()).copied().unwrap_or(0)
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.owner.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// A transport whose writes fail with `TimedOut` once they made no
/// progress for `timeout` (the peer stopped reading and the socket buffers
/// are full). Reads pass through.
#[derive(Debug)]
pub struct WriteDeadline<T> {
    inner: T,
    timeout: Duration,
    /// Running while a write waits; reset whenever one makes progress.
    stalled: Option<Pin<Box<Sleep>>>,
    /// Counts the cut, when given.
    counters: Option<Arc<ApiCounters>>,
}

impl<T> WriteDeadline<T> {
    pub fn new(inner: T, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            stalled: None,
            counters: None,
        }
    }

    /// Counts a cut in `counters.write_timeout`.
    pub fn counting(mut self, counters: Arc<ApiCounters>) -> Self {
        self.counters = Some(counters);
        self
    }

    /// After `Pending` from the transport: starts or checks the deadline.
    fn pending<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let timeout = self.timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                if let Some(counters) = self.counters.take() {
                    ApiCounters::count(&counters.write_timeout);
                }
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the client read nothing for {timeout:?}"),
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn progressed<R>(
        &mut self,
        result: Poll<io::Result<R>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<R>> {
        match result {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.pending(cx),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.progressed(result, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.progressed(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.progressed(result, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.progressed(result, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_client_counts() {
        let counts = Arc::new(ClientConnections::default());
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        let first = counts.take(a, 2).unwrap();
        let second = counts.take(mapped, 2).unwrap();
        assert!(counts.take(a, 2).is_none());
        assert!(counts.take("127.0.0.3".parse().unwrap(), 2).is_some());
        drop(first);
        assert_eq!(counts.held_by(a), 1);
        let _third = counts.take(a, 2).unwrap();
        drop(second);
        assert_eq!(counts.held_by(mapped), 1);
    }

    #[test]
    fn loopback_clients() {
        assert!(ClientAddr("127.0.0.5:1".parse().unwrap()).is_loopback());
        assert!(ClientAddr("[::1]:1".parse().unwrap()).is_loopback());
        assert!(ClientAddr("[::ffff:127.0.0.1]:1".parse().unwrap()).is_loopback());
        assert!(!ClientAddr("192.0.2.1:1".parse().unwrap()).is_loopback());
    }

    #[tokio::test]
    async fn a_write_that_makes_no_progress_times_out() {
        use tokio::io::AsyncWriteExt;
        let (client, server) = tokio::io::duplex(64);
        let mut writer = WriteDeadline::new(server, Duration::from_millis(200));
        let started = tokio::time::Instant::now();
        let error = writer.write_all(&[0u8; 4096]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(200));
        drop(client);
    }
}
