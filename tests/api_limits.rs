//! Slow and hostile clients on the API's connection loop (the real router,
//! a model of 1,500 resources so `/metrics` is several MiB):
//!
//! 150 clients open `GET /metrics` and never read (a 4 KiB receive
//! buffer), 75 from 127.0.0.2 and 75 from 127.0.0.3. Each address gets its
//! share (`max_connections_per_client`), the rest are closed at once; a
//! normal scrape and `/healthz` from 127.0.0.1 are answered within 1 s while
//! the stalled ones are held; the stalled ones are cut after the write
//! timeout, which frees their addresses' slots; both are counted.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drbd_agent::api::{
    bind, router, serve_gated, ApiState, Limits, StatusAccess, WebConfig, WebGate,
};
use drbd_agent::drbd::{apply_line, Line, Shared};
use drbd_agent::runtime::CancellationToken;
use std::sync::atomic::Ordering;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Enough that the exposition (one series per current state, ~1 KB per
/// resource) is several times what the kernel buffers per connection.
const RESOURCES: usize = 7_500;
const STALLED: usize = 150;
const PER_CLIENT: usize = 32;
const WRITE_TIMEOUT: Duration = Duration::from_secs(8);
/// The bound for the normal scrape and `/healthz`.
const ANSWER_BOUND: Duration = Duration::from_secs(1);
const BOUND: Duration = Duration::from_secs(120);

async fn big_model() -> Arc<Shared> {
    let shared = Arc::new(Shared::new());
    let mut state = shared.state.write().await;
    for i in 0..RESOURCES {
        for line in [
            format!("exists resource name:res{i:05} role:Primary suspended:no force-io-failures:no may_promote:no promotion_score:10103"),
            format!("exists connection name:res{i:05} peer-node-id:1 conn-name:bravo connection:Connected role:Secondary"),
            format!("exists device name:res{i:05} volume:0 minor:{i} backing_dev:/dev/vg0/res{i:05} disk:UpToDate client:no open:no quorum:yes"),
            format!("exists peer-device name:res{i:05} peer-node-id:1 conn-name:bravo volume:0 replication:Established peer-disk:UpToDate peer-client:no resync-suspended:no"),
        ] {
            apply_line(&mut state, &Line::Text(line));
        }
    }
    apply_line(&mut state, &Line::Text("exists -".to_owned()));
    state.stats.child_running = true;
    drop(state);
    shared
}

/// Connects from `local` with a small receive buffer, sends a `/metrics`
/// request and does not read.
async fn stalled_client(local: IpAddr, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.bind(SocketAddr::new(local, 0)).expect("bind");
    let mut stream = socket.connect(server).await.expect("connect");
    // Refused connections may be closed before the request is written.
    let _ = stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    stream
}

/// A whole `GET path` from `local`: (status line, body length, time to the
/// status line, total time).
async fn get(
    local: IpAddr,
    server: SocketAddr,
    path: &str,
) -> std::io::Result<(String, usize, Duration, Duration)> {
    let started = Instant::now();
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(local, 0))?;
    let mut stream = socket.connect(server).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut first = vec![0u8; 64 * 1024];
    let n = stream.read(&mut first).await?;
    let first_byte = started.elapsed();
    first.truncate(n);
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await?;
    let status = String::from_utf8_lossy(&first)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    Ok((status, n + rest.len(), first_byte, started.elapsed()))
}

/// Reads what is left until the server closes: (bytes, closed).
async fn drain(mut stream: TcpStream) -> (usize, bool) {
    let mut total = 0;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf)).await {
            Ok(Ok(0)) => return (total, true),
            Ok(Ok(n)) => total += n,
            // A reset: closed by the server.
            Ok(Err(_)) => return (total, true),
            Err(_) => return (total, false),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_metrics_readers_do_not_block_scrapes_and_are_cut() {
    tokio::time::timeout(BOUND, async {
        let shared = big_model().await;
        let _alive = shared.alive_guard();
        let app = router(ApiState {
            node_name: "alpha".to_owned(),
            shared: shared.clone(),
            throttle: Default::default(),
            linstor: None,
        });
        let listeners = bind(&["127.0.0.1:0".parse().unwrap()]).await.unwrap();
        let listener = listeners.into_iter().next().unwrap();
        let server = listener.local_addr().unwrap();
        let limits = Limits {
            write_timeout: WRITE_TIMEOUT,
            max_connections_per_client: PER_CLIENT,
            ..Limits::default()
        };
        assert!(limits.max_connections > 2 * PER_CLIENT);
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        // Plain HTTP (no web config); the gate's counters see the cuts.
        let gate = Arc::new(WebGate::new(WebConfig::default(), StatusAccess::Same));
        let task = serve_gated(listener, app, limits, stopped, gate.clone());
        let local: IpAddr = "127.0.0.1".parse().unwrap();

        // The exposition is larger than what the kernel buffers for a
        // client that does not read (so those writes really stall).
        let (status, full_length, _, _) = get(local, server, "/metrics").await.unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        assert!(full_length > 6 << 20, "only {full_length} bytes");

        let attackers: [IpAddr; 2] = ["127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap()];
        // The first write stalls after this, so no cut comes before
        // `held_since + WRITE_TIMEOUT`.
        let held_since = Instant::now();
        let mut stalled = Vec::new();
        for i in 0..STALLED {
            stalled.push(stalled_client(attackers[i % 2], server).await);
        }
        eprintln!(
            "{STALLED} stalled clients connected after {:?}",
            held_since.elapsed()
        );
        // Let the server take them all in and start writing.
        tokio::time::sleep(Duration::from_millis(300)).await;

        // Still held: a new connection from a stalled address is closed
        // without an answer (its share is taken).
        let checked_at = held_since.elapsed();
        eprintln!("share check after {checked_at:?}");
        assert!(
            checked_at < WRITE_TIMEOUT - Duration::from_millis(500),
            "connecting took {checked_at:?}: too slow to tell held from cut"
        );
        let refused = get(attackers[0], server, "/healthz").await;
        assert!(
            !matches!(&refused, Ok((status, ..)) if status.starts_with("HTTP/1.1 200")),
            "a stalled address got a connection beyond its share: {refused:?}"
        );

        let (status, _, first, _) = get(local, server, "/healthz").await.unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        assert!(first < ANSWER_BOUND, "/healthz took {first:?}");
        let (status, length, first, total) = get(local, server, "/metrics").await.unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        assert!(first < ANSWER_BOUND, "/metrics answered after {first:?}");
        assert!(length >= full_length - 4096, "scrape cut short: {length}");
        eprintln!("normal scrape: first bytes after {first:?}, {length} bytes in {total:?}");
        // The stalled clients are cut after the write timeout: wait past it
        // (reading earlier would be progress and keep them alive).
        tokio::time::sleep_until((held_since + WRITE_TIMEOUT + Duration::from_secs(3)).into())
            .await;
        let mut answered = 0;
        for stream in stalled {
            let (bytes, closed) = drain(stream).await;
            assert!(closed, "a stalled client was never cut");
            assert!(bytes < full_length, "a stalled client got the whole body");
            if bytes > 0 {
                answered += 1;
            }
        }
        assert!(held_since.elapsed() >= WRITE_TIMEOUT);
        assert_eq!(
            answered,
            2 * PER_CLIENT,
            "each stalled address holds its share, the rest are closed at once"
        );
        let counters = &gate.counters;
        assert_eq!(
            counters.write_timeout.load(Ordering::Relaxed),
            2 * PER_CLIENT as u64
        );
        assert!(
            counters.per_client_cap.load(Ordering::Relaxed) >= (STALLED - 2 * PER_CLIENT) as u64
        );
        // Their slots are free again.
        let (status, ..) = get(attackers[0], server, "/healthz").await.unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");

        stop.cancel();
        task.await.unwrap();
    })
    .await
    .expect("test bounded");
}
