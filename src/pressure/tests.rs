use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::config::{check_peer_address, parse_token};
use super::fetch::{record, Fetched};
use super::*;

fn report(node: &str, latency: Option<f64>, target: f64) -> PressureReport {
    PressureReport {
        node: node.into(),
        window_ms: 1000,
        resources: vec![VolumePressure {
            resource: "r0".into(),
            volume: 0,
            write_latency_ms: latency,
            queue_depth: 3.0,
            foreground_kib_per_sec: 100.0 * 1024.0,
            target_ms: target,
            pressure: pressure(latency, target),
        }],
    }
}

fn local_obs() -> Observation {
    Observation {
        app_write_latency_ms: None,
        app_queue_depth: Some(0.0),
        foreground_kib_per_sec: Some(0.0),
        backing_write_latency_ms: Some(2.0),
        ..Observation::default()
    }
}

fn peers_with(node: &str, r: PressureReport, at: Instant) -> BTreeMap<String, PeerReport> {
    let mut peer = PeerReport::default();
    record(&mut peer, Fetched::Ok(r), at);
    [(node.to_owned(), peer)].into()
}

#[test]
fn pressure_is_latency_over_target() {
    assert_eq!(pressure(Some(10.0), 5.0), Some(2.0));
    assert_eq!(pressure(None, 5.0), None);
    assert_eq!(pressure(Some(1.0), 0.0), None);
    assert_eq!(pressure(Some(f64::NAN), 5.0), None);
}

#[test]
fn fresh_peer_pressure_is_scaled_to_the_local_target() {
    let at = Instant::now();
    // Alpha's target is 10 ms, its latency 15 ms: pressure 1.5; our target 4 ms.
    let peers = peers_with("alpha", report("alpha", Some(15.0), 10.0), at);
    let now = at + Duration::from_secs(1);
    let nodes = vec!["alpha".to_owned()];
    let (obs, signal) = combine(
        local_obs(),
        ("r0", 0),
        &nodes,
        &peers,
        now,
        Duration::from_secs(5),
        4.0,
    );
    assert_eq!(obs.app_write_latency_ms, Some(6.0));
    assert_eq!(obs.app_queue_depth, Some(3.0));
    assert_eq!(obs.foreground_kib_per_sec, Some(100.0 * 1024.0));
    assert_eq!(obs.backing_write_latency_ms, Some(2.0), "local signal kept");
    assert_eq!(
        signal,
        Signal::Peer {
            node: "alpha".into(),
            pressure: 1.5
        }
    );
}

#[test]
fn stale_report_falls_back_to_local_signals() {
    let at = Instant::now();
    let peers = peers_with("alpha", report("alpha", Some(15.0), 10.0), at);
    // Staleness by the receiver's clock only: 6 s after receipt.
    let now = at + Duration::from_secs(6);
    let nodes = vec!["alpha".to_owned()];
    let (obs, signal) = combine(
        local_obs(),
        ("r0", 0),
        &nodes,
        &peers,
        now,
        Duration::from_secs(5),
        4.0,
    );
    assert_eq!(obs, local_obs());
    assert_eq!(signal.kind(), "stale");
    assert_eq!(
        signal,
        Signal::Local {
            reason: LocalReason::Stale {
                node: "alpha".into(),
                age_ms: 6000
            }
        }
    );
}

#[test]
fn failed_fetch_keeps_the_last_report_until_stale() {
    let at = Instant::now();
    let mut peers = peers_with("alpha", report("alpha", Some(15.0), 10.0), at);
    let peer = peers.get_mut("alpha").unwrap();
    record(
        peer,
        Fetched::Failed {
            result: "timeout",
            error: "timed out".into(),
        },
        at + Duration::from_secs(1),
    );
    assert!(!peer.up());
    assert_eq!(peer.fetches.get("ok"), Some(&1));
    assert_eq!(peer.fetches.get("timeout"), Some(&1));
    let nodes = vec!["alpha".to_owned()];
    let stale = Duration::from_secs(5);
    let (_, fresh) = combine(
        local_obs(),
        ("r0", 0),
        &nodes,
        &peers,
        at + Duration::from_secs(2),
        stale,
        4.0,
    );
    assert_eq!(fresh.kind(), "peer");
    let (obs, old) = combine(
        local_obs(),
        ("r0", 0),
        &nodes,
        &peers,
        at + Duration::from_secs(9),
        stale,
        4.0,
    );
    assert_eq!(old.kind(), "stale");
    assert_eq!(obs, local_obs());
}

#[test]
fn unknown_unreachable_and_empty_peers_say_why() {
    let now = Instant::now();
    let nodes = vec!["alpha".to_owned()];
    let stale = Duration::from_secs(5);
    let empty = BTreeMap::new();
    let (_, s) = combine(local_obs(), ("r0", 0), &[], &empty, now, stale, 4.0);
    assert_eq!(s.kind(), "no-peer");
    let (_, s) = combine(local_obs(), ("r0", 0), &nodes, &empty, now, stale, 4.0);
    assert_eq!(s.kind(), "unreachable");
    let mut peer = PeerReport::default();
    record(
        &mut peer,
        Fetched::Failed {
            result: "unauthorized",
            error: "401".into(),
        },
        now,
    );
    let peers: BTreeMap<_, _> = [("alpha".to_owned(), peer)].into();
    let (obs, s) = combine(local_obs(), ("r0", 0), &nodes, &peers, now, stale, 4.0);
    assert_eq!(obs, local_obs());
    assert_eq!(
        s,
        Signal::Local {
            reason: LocalReason::Unreachable {
                node: "alpha".into(),
                error: "401".into()
            }
        }
    );
    // A report without writes, or without this volume.
    let peers = peers_with("alpha", report("alpha", None, 10.0), now);
    let (_, s) = combine(local_obs(), ("r0", 0), &nodes, &peers, now, stale, 4.0);
    assert_eq!(s.kind(), "no-figures");
    let peers = peers_with("alpha", report("alpha", Some(1.0), 10.0), now);
    let (_, s) = combine(local_obs(), ("r1", 0), &nodes, &peers, now, stale, 4.0);
    assert_eq!(s.kind(), "no-figures");
}

#[test]
fn highest_fresh_pressure_wins() {
    let now = Instant::now();
    let mut peers = peers_with("alpha", report("alpha", Some(5.0), 10.0), now);
    peers.extend(peers_with(
        "charlie",
        report("charlie", Some(30.0), 10.0),
        now,
    ));
    let nodes = vec!["alpha".to_owned(), "charlie".to_owned()];
    let (obs, s) = combine(
        local_obs(),
        ("r0", 0),
        &nodes,
        &peers,
        now,
        Duration::from_secs(5),
        2.0,
    );
    assert_eq!(s.kind(), "peer");
    assert_eq!(obs.app_write_latency_ms, Some(6.0));
}

#[test]
fn garbage_reports_are_refused() {
    assert!(report("a", Some(1.0), 5.0).check().is_ok());
    let mut bad = report("a", Some(1.0), 5.0);
    bad.resources[0].target_ms = 0.0;
    assert!(bad.check().is_err());
    let mut bad = report("a", Some(1.0), 5.0);
    bad.resources[0].pressure = Some(-1.0);
    assert!(bad.check().is_err());
    let json = serde_json::to_string(&report("a", Some(1.0), 5.0)).unwrap();
    let back: PressureReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report("a", Some(1.0), 5.0));
    assert!(serde_json::from_str::<PressureReport>("{\"node\":1}").is_err());
}

#[test]
fn path_hosts() {
    assert_eq!(path_host("ipv4:10.0.0.2:7789").as_deref(), Some("10.0.0.2"));
    assert_eq!(
        path_host("ipv6:[fd00::2]:7789").as_deref(),
        Some("[fd00::2]")
    );
    assert_eq!(path_host("ipv4:10.0.0.2"), None);
    assert_eq!(path_host("ssocks:10.0.0.2:7789"), None);
    assert_eq!(path_host("ipv4:nohost:7789"), None);
}

#[test]
fn peer_addresses_and_tokens() {
    assert!(check_peer_address("10.0.0.2:9943").is_ok());
    assert!(check_peer_address("[::1]:9943").is_ok());
    assert!(check_peer_address("host:0").is_err());
    assert!(check_peer_address(":9943").is_err());
    assert!(check_peer_address("10.0.0.2").is_err());
    let p = std::path::Path::new("t");
    assert_eq!(
        parse_token(p, "0123456789abcdef\n").unwrap(),
        "0123456789abcdef"
    );
    assert!(parse_token(p, "short\n").is_err());
    assert!(parse_token(p, "").is_err());
}

#[test]
fn bearer_token_check() {
    use axum::http::{header, HeaderMap, HeaderValue};
    let token = "0123456789abcdef";
    let mut h = HeaderMap::new();
    assert!(!api::authorized(&h, token));
    h.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer 0123456789abcdef"),
    );
    assert!(api::authorized(&h, token));
    h.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer 0123456789abcdeX"),
    );
    assert!(!api::authorized(&h, token));
    h.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer 0123456789abcdef0"),
    );
    assert!(!api::authorized(&h, token));
    h.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Basic 0123456789abcdef"),
    );
    assert!(!api::authorized(&h, token));
}

#[test]
fn config_section() {
    use crate::config::Config;
    let load = |text: &str| Config::from_sources(&[("agent.toml".into(), text.to_owned())]);
    let c = load("[pressure]\nenabled = true\ntoken-file = \"/t\"\ninterval = \"500ms\"\nstale-after = \"3s\"\nport = 9000\n[pressure.peers]\nalpha = \"127.0.0.1:1234\"\n").unwrap();
    assert!(c.pressure.enabled);
    assert_eq!(c.pressure.port, 9000);
    assert_eq!(c.pressure.interval, Duration::from_millis(500));
    assert_eq!(c.pressure.stale_after, Duration::from_secs(3));
    assert_eq!(
        c.pressure.peers.get("alpha").map(String::as_str),
        Some("127.0.0.1:1234")
    );
    assert_eq!(load("").unwrap().pressure, PressureConfig::default());
    let e = load("[pressure]\nenabled = true\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("pressure.token-file") && e.contains("agent.toml:1"),
        "{e}"
    );
    let e = load("[pressure]\nbogus = 1\n").unwrap_err().to_string();
    assert!(e.contains("agent.toml:2") && e.contains("bogus"), "{e}");
    let e = load("[pressure.peers]\nalpha = \"nope\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("agent.toml:2") && e.contains("HOST:PORT"), "{e}");
    let e = load("[pressure]\ninterval = \"5s\"\nstale-after = \"1s\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("agent.toml:3") && e.contains("pressure.stale-after"),
        "{e}"
    );
    // Merged key by key across files, peers by name.
    let c = Config::from_sources(&[
        (
            "a.toml".into(),
            "[pressure]\nport = 1\n[pressure.peers]\nalpha = \"h:1\"\n".into(),
        ),
        (
            "b.toml".into(),
            "[pressure.peers]\nbravo = \"h:2\"\n".into(),
        ),
    ])
    .unwrap();
    assert_eq!(c.pressure.port, 1);
    assert_eq!(c.pressure.peers.len(), 2);
}

#[test]
fn primary_volumes_and_peers_to_ask() {
    use crate::events2::parse_line;
    use crate::state::Model;
    let mut m = Model::new();
    for line in "exists resource name:r0 role:Secondary suspended:no
exists device name:r0 volume:0 minor:7 disk:Inconsistent client:no
exists connection name:r0 peer-node-id:1 conn-name:beta connection:Connected role:Secondary
exists path name:r0 peer-node-id:1 conn-name:beta local:ipv4:10.0.0.1:7000 peer:ipv4:10.0.0.2:7000 established:yes
exists peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 replication:SyncTarget peer-disk:UpToDate
exists connection name:r0 peer-node-id:2 conn-name:gamma connection:Connected role:Primary
exists peer-device name:r0 peer-node-id:2 conn-name:gamma volume:0 replication:Established peer-disk:UpToDate
exists resource name:r1 role:Primary suspended:no
exists device name:r1 volume:0 minor:9 disk:UpToDate client:no
exists -"
        .lines()
    {
        m.apply(&parse_line(line).unwrap());
    }
    let v = sampler::primary_volumes(&m);
    assert_eq!(v.len(), 1);
    assert_eq!((v[0].resource.as_str(), v[0].minor), ("r1", 9));
    let overrides: BTreeMap<String, String> =
        [("gamma".to_owned(), "127.0.0.1:5".to_owned())].into();
    let ask = fetch::peers_to_ask(&m, &overrides, 9943);
    assert_eq!(ask.get("beta"), Some(&Some("10.0.0.2:9943".to_owned())));
    assert_eq!(ask.get("gamma"), Some(&Some("127.0.0.1:5".to_owned())));
    assert_eq!(ask.len(), 2);
    let ask = fetch::peers_to_ask(&m, &BTreeMap::new(), 9943);
    assert_eq!(ask.get("gamma"), Some(&None), "no path, no override");
}

#[test]
fn senders_clock_is_never_consulted() {
    // A peer whose clock is a century ahead (a newer agent might add its
    // time): the field is ignored, the report's age is the receiver's.
    let json = r#"{"node":"alpha","window_ms":1000,"generated_at":"2126-01-01T00:00:00Z",
        "resources":[{"resource":"r0","volume":0,"write_latency_ms":10.0,"queue_depth":1.0,
        "foreground_kib_per_sec":1.0,"target_ms":5.0,"pressure":2.0}]}"#;
    let report: PressureReport = serde_json::from_str(json).unwrap();
    assert!(report.check().is_ok());
    let received = Instant::now();
    let peers = peers_with("alpha", report, received);
    let nodes = vec!["alpha".to_owned()];
    let stale = Duration::from_secs(5);
    let fresh = combine(
        local_obs(),
        ("r0", 0),
        &nodes,
        &peers,
        received + Duration::from_secs(4),
        stale,
        5.0,
    );
    assert_eq!(fresh.1.kind(), "peer");
    assert_eq!(fresh.0.app_write_latency_ms, Some(10.0));
    let old = combine(
        local_obs(),
        ("r0", 0),
        &nodes,
        &peers,
        received + Duration::from_secs(6),
        stale,
        5.0,
    );
    assert_eq!(old.1.kind(), "stale");
    // A receiver clock that is behind the receipt (cannot happen with a
    // monotonic clock, but must not panic or count as stale).
    let earlier = combine(local_obs(), ("r0", 0), &nodes, &peers, received, stale, 5.0);
    assert_eq!(earlier.1.kind(), "peer");
}

#[test]
fn mtls_config() {
    use super::config::{MtlsFiles, PressureAuth, DEFAULT_MTLS_PORT};
    use crate::config::Config;
    let load = |text: &str| Config::from_sources(&[("agent.toml".into(), text.to_owned())]);
    let tls = "ca-file = \"/ca.pem\"\ncertificate = \"/me.pem\"\nkey = \"/me.key\"\n";
    let c = load(&format!(
        "[pressure]\nenabled = true\nauth = \"mtls\"\n{tls}"
    ))
    .unwrap();
    assert_eq!(c.pressure.auth, PressureAuth::Mtls);
    assert_eq!(c.pressure.port, DEFAULT_MTLS_PORT);
    assert_eq!(c.pressure.token_file, None);
    assert_eq!(
        c.pressure.mtls,
        Some(MtlsFiles {
            ca_file: "/ca.pem".into(),
            certificate: "/me.pem".into(),
            key: "/me.key".into(),
        })
    );
    let c = load(&format!(
        "[pressure]\nenabled = true\nauth = \"mtls\"\nport = 7000\n{tls}"
    ))
    .unwrap();
    assert_eq!(c.pressure.port, 7000);
    // The token stays the default, on the API port.
    let c = load("[pressure]\nenabled = true\ntoken-file = \"/t\"\n").unwrap();
    assert_eq!(
        (c.pressure.auth, c.pressure.port, c.pressure.mtls),
        (PressureAuth::Token, 9943, None)
    );
    // Each TLS file is required, the error names the key.
    for missing in ["ca-file", "certificate", "key"] {
        let text: String = tls
            .lines()
            .filter(|l| !l.starts_with(&format!("{missing} ")))
            .map(|l| format!("{l}\n"))
            .collect();
        let e = load(&format!(
            "[pressure]\nenabled = true\nauth = \"mtls\"\n{text}"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(&format!("pressure.{missing}")) && e.contains("agent.toml:1"),
            "{missing}: {e}"
        );
    }
    // Keys of the other method are refused, with their line.
    let e = load(&format!(
        "[pressure]\nenabled = true\nauth = \"mtls\"\ntoken-file = \"/t\"\n{tls}"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("pressure.token-file") && e.contains("agent.toml:4"),
        "{e}"
    );
    let e = load("[pressure]\nenabled = true\ntoken-file = \"/t\"\ncertificate = \"/me.pem\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("pressure.certificate") && e.contains("agent.toml:4"),
        "{e}"
    );
    // In token mode `ca-file` means: ask the peers' API over HTTPS.
    let config =
        load("[pressure]\nenabled = true\ntoken-file = \"/t\"\nca-file = \"/ca.pem\"\n").unwrap();
    assert_eq!(
        config.pressure.token_ca_file.as_deref(),
        Some(std::path::Path::new("/ca.pem"))
    );
    assert!(!config.pressure.allow_plain_http_token);
    // An unknown method is a parse error at its line.
    let e = load("[pressure]\nauth = \"basic\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("agent.toml:2") && e.contains("mtls"), "{e}");
    // Disabled: nothing is required.
    assert!(load("[pressure]\nauth = \"mtls\"\n").is_ok());
}
