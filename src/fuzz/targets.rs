//! The fuzz targets: each parser of outside input, with a generator of
//! inputs shaped like what it reads.

use std::collections::BTreeMap;

use netlink_packet_core::{Emitable, Parseable};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};

use super::{signature, Rng, Target};

/// Every target, by name.
pub fn targets() -> Vec<Target> {
    vec![
        Target {
            name: "events2",
            run: run_events2,
            generate: generate_events2,
            dictionary: EVENTS2_WORDS,
        },
        Target {
            name: "http-head",
            run: run_http_head,
            generate: generate_http_head,
            dictionary: HTTP_WORDS,
        },
        Target {
            name: "http-server",
            run: run_http_server,
            generate: generate_http_head,
            dictionary: HTTP_WORDS,
        },
        Target {
            name: "linstor-apicallrc",
            run: run_apicallrc,
            generate: generate_apicallrc,
            dictionary: JSON_WORDS,
        },
        Target {
            name: "linstor-props",
            run: run_props,
            generate: generate_props,
            dictionary: JSON_WORDS,
        },
        Target {
            name: "linstor-policies",
            run: run_policies,
            generate: generate_policies,
            dictionary: JSON_WORDS,
        },
        Target {
            name: "pressure-report",
            run: run_pressure,
            generate: generate_pressure,
            dictionary: JSON_WORDS,
        },
        Target {
            name: "diskstats",
            run: run_diskstats,
            generate: generate_diskstats,
            dictionary: &["0", " ", "-1", "18446744073709551615", "dm-0", "nvme0n1"],
        },
        Target {
            name: "netlink",
            run: run_netlink,
            generate: generate_netlink,
            dictionary: &["\u{0}\u{0}", "\u{4}\u{0}\u{3}\u{0}", "\u{8}\u{0}\u{1}\u{0}"],
        },
        Target {
            name: "web-config",
            run: run_web_config,
            generate: generate_web_config,
            dictionary: WEB_WORDS,
        },
    ]
}

const EVENTS2_WORDS: &[&str] = &[
    "exists ",
    "change ",
    "create ",
    "destroy ",
    "call ",
    "response ",
    "resource ",
    "connection ",
    "device ",
    "peer-device ",
    "path ",
    "helper ",
    "name:",
    "volume:",
    "peer-node-id:",
    "conn-name:",
    "role:Primary",
    "disk:UpToDate",
    "replication:SyncTarget",
    "done:",
    "local:ipv4:",
    "peer:ipv6:[",
    "minor:",
    " -",
    "2026-01-01T00:00:00.000000+00:00 ",
];

const HTTP_WORDS: &[&str] = &[
    "GET ",
    " HTTP/1.1\r\n",
    "\r\n\r\n",
    "Authorization: Basic ",
    "Accept-Encoding: ",
    "gzip;q=0",
    "*;q=1",
    "identity",
    "Content-Length: ",
    "Transfer-Encoding: chunked",
    ":",
    "==",
];

const JSON_WORDS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "null",
    "true",
    "1e999",
    "-0",
    "\\u0000",
    "\\ud800",
    "\"ret_code\":",
    "\"message\":",
    "\"props\":",
    "\"name\":",
    "\"resource_group_name\":",
    "\"Aux/drbd-agent/latency-target\"",
    "\"Aux/drbd-agent/mode\"",
    "\"resources\":",
    "\"node\":",
    "\"window_ms\":",
    "\"volume\":",
    "\"target_ms\":",
];

const WEB_WORDS: &[&str] = &[
    "tls_server_config:\n",
    "  cert_file: ",
    "  client_auth_type: ",
    "RequireAndVerifyClientCert",
    "  min_version: TLS13\n",
    "basic_auth_users:\n",
    "  a: $2y$04$",
    "http_server_config:\n",
    "  headers:\n",
    "- ",
    ": ",
    "&a ",
    "*a",
    "!!binary ",
    "'",
];

fn text(input: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(input)
}

// --- events2: the parser, then the model the supervisor applies it to ---

fn run_events2(input: &[u8]) -> String {
    let text = text(input);
    let mut model = crate::state::Model::new();
    let mut signatures = String::new();
    for line in text.lines().take(64) {
        let parsed = crate::events2::parse_line(line);
        if let Ok(event) = &parsed {
            let _ = model.apply(event);
        }
        signatures.push_str(&signature(&parsed));
        signatures.push(';');
    }
    signatures.chars().take(160).collect()
}

fn generate_events2(rng: &mut Rng) -> Vec<u8> {
    const KINDS: [&str; 6] = ["exists", "change", "create", "destroy", "call", "response"];
    const OBJECTS: [&str; 6] = [
        "resource",
        "connection",
        "device",
        "peer-device",
        "path",
        "helper",
    ];
    const KEYS: [&str; 16] = [
        "name",
        "volume",
        "peer-node-id",
        "conn-name",
        "role",
        "disk",
        "replication",
        "peer-disk",
        "done",
        "minor",
        "local",
        "peer",
        "established",
        "connection",
        "backing_dev",
        "helper",
    ];
    const VALUES: [&str; 14] = [
        "r0",
        "Primary",
        "Secondary",
        "UpToDate",
        "Inconsistent",
        "SyncTarget",
        "Connected",
        "yes",
        "no",
        "ipv4:10.0.0.1:7000",
        "ipv6:[fd00::1]:7000",
        "/dev/vg/r0",
        "bravo",
        "",
    ];
    let mut out = String::new();
    for _ in 0..1 + rng.below(6) {
        if rng.chance(5) {
            out.push_str("2026-01-01T00:00:00.000000+00:00 ");
        }
        out.push_str(rng.pick(&KINDS));
        out.push(' ');
        if rng.chance(10) {
            out.push('-');
        } else {
            out.push_str(rng.pick(&OBJECTS));
            for _ in 0..rng.below(8) {
                out.push(' ');
                out.push_str(rng.pick(&KEYS));
                out.push(':');
                if rng.chance(3) {
                    out.push_str(&rng.number());
                } else {
                    out.push_str(rng.pick(&VALUES));
                }
            }
        }
        out.push('\n');
    }
    out.into_bytes()
}

// --- the HTTP request head: httparse (as hyper reads it), then the
// agent's own decoding of Accept-Encoding and Authorization ---

fn run_http_head(input: &[u8]) -> String {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    let parsed = request.parse(input);
    let mut out = match &parsed {
        Ok(httparse::Status::Complete(_)) => "complete".to_owned(),
        Ok(httparse::Status::Partial) => "partial".to_owned(),
        Err(e) => format!("err:{e}"),
    };
    if parsed.is_ok() {
        for header in request.headers.iter() {
            if header.name.eq_ignore_ascii_case("accept-encoding") {
                if let Ok(value) = std::str::from_utf8(header.value) {
                    out.push_str(if crate::metrics::accepts_gzip(value) {
                        ";gzip"
                    } else {
                        ";plain"
                    });
                }
            } else if header.name.eq_ignore_ascii_case("authorization") {
                let basic = crate::api::web_config::parse_basic_authorization(header.value);
                out.push_str(if basic.is_some() {
                    ";basic"
                } else {
                    ";bad-auth"
                });
            }
        }
    }
    out
}

/// The agent's own HTTP server on an in-memory connection: hyper's
/// HTTP/1 connection (as configured by the connection loop) in front of the
/// real router and the gate (`status = "local"`, a non-loopback client).
fn run_http_server(input: &[u8]) -> String {
    use std::sync::Arc;

    struct Server {
        runtime: tokio::runtime::Runtime,
        router: axum::Router,
    }
    fn server() -> Option<Server> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        let gate = Arc::new(crate::api::WebGate::new(
            crate::api::WebConfig::default(),
            crate::api::StatusAccess::Local,
        ));
        let router = crate::api::router(crate::api::ApiState {
            node_name: "fuzz".to_owned(),
            shared: Arc::new(crate::runtime::Shared::new()),
            throttle: Default::default(),
            linstor: None,
        })
        .layer(axum::middleware::from_fn_with_state(
            gate,
            crate::api::guard,
        ));
        Some(Server { runtime, router })
    }
    thread_local! {
        static SERVER: Option<Server> = server();
    }
    SERVER.with(|server| match server {
        Some(server) => server
            .runtime
            .block_on(serve_one(server.router.clone(), input)),
        None => "no-runtime".to_owned(),
    })
}

async fn serve_one(router: axum::Router, input: &[u8]) -> String {
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tower::ServiceExt;

    let (mut client, server) = tokio::io::duplex(256 * 1024);
    if client.write_all(input).await.is_err() || client.shutdown().await.is_err() {
        return "write".to_owned();
    }
    let peer = crate::api::ClientAddr(std::net::SocketAddr::from(([192, 0, 2, 1], 40000)));
    let service = TowerToHyperService::new(router.map_request(
        move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(peer);
            request
        },
    ));
    // The input ends with the client's half close: answer what was asked.
    let connection = hyper::server::conn::http1::Builder::new()
        .half_close(true)
        .max_buf_size(16 * 1024)
        .serve_connection(TokioIo::new(server), service);
    let ended = tokio::time::timeout(std::time::Duration::from_secs(1), connection).await;
    let mut answer = Vec::new();
    let _ = client.read_to_end(&mut answer).await;
    let status: String = answer
        .split(|&b| b == b'\r')
        .next()
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .unwrap_or_default();
    let end = match ended {
        Ok(Ok(())) => "ok",
        Ok(Err(_)) => "error",
        Err(_) => "hung",
    };
    format!("{end}:{}", status.chars().take(40).collect::<String>())
}

fn generate_http_head(rng: &mut Rng) -> Vec<u8> {
    const METHODS: [&str; 5] = ["GET", "HEAD", "POST", "get", "G\u{0}T"];
    const PATHS: [&str; 5] = ["/metrics", "/healthz", "/v1/status", "*", "/%2e%2e/"];
    const CREDENTIALS: [&str; 5] = ["YWxpY2U6cHc=", "YWxpY2U=", "Og==", "=", "YWxpY2U6cHc"];
    let mut out = format!(
        "{} {} HTTP/1.{}\r\n",
        rng.pick(&METHODS),
        rng.pick(&PATHS),
        rng.below(3)
    );
    for _ in 0..rng.below(6) {
        match rng.below(4) {
            0 => out.push_str(&format!(
                "Authorization: {} {}\r\n",
                rng.pick(&["Basic", "basic", "Bearer", ""]),
                rng.pick(&CREDENTIALS)
            )),
            1 => out.push_str(&format!(
                "Accept-Encoding: {};q={}, {}\r\n",
                rng.pick(&["gzip", "*", "identity", "deflate"]),
                rng.number(),
                rng.pick(&["gzip;q=0", "*;q=0.5", "", "br"])
            )),
            2 => out.push_str(&format!("Host: {}\r\n", rng.word())),
            _ => out.push_str(&format!("{}: {}\r\n", rng.word(), rng.word())),
        }
    }
    if !rng.chance(6) {
        out.push_str("\r\n");
    }
    out.into_bytes()
}

// --- LINSTOR: ApiCallRc lists, properties, resource groups/definitions ---

fn run_apicallrc(input: &[u8]) -> String {
    match crate::linstor::apicallrc::parse_list(input) {
        Some(list) => {
            let worst = crate::linstor::apicallrc::worst(&list);
            for rc in &list {
                let _ = rc.to_string();
            }
            format!("ok:{}:{worst:?}", list.len().min(3))
        }
        None => "none".to_owned(),
    }
}

/// A random JSON value shaped by `keys` (depth-bounded).
fn json_value(rng: &mut Rng, keys: &[&str], depth: usize) -> String {
    match rng.below(if depth == 0 { 5 } else { 8 }) {
        0 => "null".to_owned(),
        1 => rng.pick(&["true", "false"]).to_string(),
        2 => rng.number(),
        3 | 4 => format!("{:?}", rng.word()),
        5 | 6 => {
            let fields: Vec<String> = (0..rng.below(5))
                .map(|_| {
                    let key = if rng.chance(4) {
                        rng.word()
                    } else {
                        rng.pick(keys).to_string()
                    };
                    format!("{key:?}:{}", json_value(rng, keys, depth - 1))
                })
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        _ => {
            let items: Vec<String> = (0..rng.below(4))
                .map(|_| json_value(rng, keys, depth - 1))
                .collect();
            format!("[{}]", items.join(","))
        }
    }
}

fn generate_apicallrc(rng: &mut Rng) -> Vec<u8> {
    const KEYS: [&str; 7] = [
        "ret_code",
        "message",
        "cause",
        "correction",
        "details",
        "obj_refs",
        "error_report_ids",
    ];
    let entries: Vec<String> = (0..rng.below(4))
        .map(|_| {
            let code = match rng.below(3) {
                0 => "-4611686018427387604".to_owned(),
                1 => "4611686018427387904".to_owned(),
                _ => rng.number(),
            };
            let mut fields = vec![format!("\"ret_code\":{code}")];
            for _ in 0..rng.below(4) {
                fields.push(format!(
                    "{:?}:{}",
                    rng.pick(&KEYS),
                    json_value(rng, &KEYS, 1)
                ));
            }
            format!("{{{}}}", fields.join(","))
        })
        .collect();
    format!("[{}]", entries.join(",")).into_bytes()
}

const POLICY_KEYS: [&str; 8] = [
    "Aux/drbd-agent/latency-target",
    "Aux/drbd-agent/mode",
    "Aux/drbd-agent/min-rate",
    "Aux/drbd-agent/max-rate",
    "Aux/drbd-agent/enabled",
    "Aux/drbd-agent/",
    "Aux/drbd-agent/unknown",
    "DrbdOptions/Net/protocol",
];

fn policy_value(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => format!("{}ms", rng.number()),
        1 => format!("{}MiB/s", rng.number()),
        2 => rng
            .pick(&["enforce", "observe", "off", "true", "false", ""])
            .to_string(),
        3 => rng.number(),
        4 => format!(
            "{}{}",
            rng.number(),
            rng.pick(&["s", "KiB/s", "GiB", "%", "h"])
        ),
        _ => rng.word(),
    }
}

/// The kinds of policy problems: each reason up to its first quoted part.
fn problem_classes(problems: &[crate::linstor::policy::PolicyProblem]) -> String {
    let mut classes: Vec<String> = problems
        .iter()
        .map(|p| {
            let key = p.key.rsplit('/').next().unwrap_or_default();
            let reason: String = p
                .reason
                .chars()
                .take_while(|c| !matches!(c, '"' | '\'' | '`'))
                .filter(|c| !c.is_ascii_digit())
                .take(32)
                .collect();
            format!("{}:{reason}", key.chars().take(16).collect::<String>())
        })
        .collect();
    classes.sort();
    classes.dedup();
    format!("props[{}]", classes.join("|"))
}

fn run_props(input: &[u8]) -> String {
    match serde_json::from_slice::<BTreeMap<String, String>>(input) {
        Ok(props) => {
            let (_, problems) = crate::linstor::policy::parse_props("fuzz", &props);
            for problem in &problems {
                let _ = problem.to_string();
            }
            problem_classes(&problems)
        }
        Err(e) => format!("json:{:?}", e.classify()),
    }
}

fn generate_props(rng: &mut Rng) -> Vec<u8> {
    let fields: Vec<String> = (0..rng.below(6))
        .map(|_| format!("{:?}:{:?}", rng.pick(&POLICY_KEYS), policy_value(rng)))
        .collect();
    format!("{{{}}}", fields.join(",")).into_bytes()
}

fn run_policies(input: &[u8]) -> String {
    // The two answers of one refresh: split at the first NUL, if any.
    let (groups, definitions) = match input.iter().position(|&b| b == 0) {
        Some(at) => (&input[..at], &input[at + 1..]),
        None => (input, &b"[]"[..]),
    };
    let groups: Result<serde_json::Value, _> = serde_json::from_slice(groups);
    let definitions: Result<serde_json::Value, _> = serde_json::from_slice(definitions);
    match (groups, definitions) {
        (Ok(groups), Ok(definitions)) => {
            let result = crate::linstor::policy::from_responses(&groups, &definitions);
            match &result {
                Ok(policies) => format!(
                    "ok:{}:{}",
                    policies.resources.len().min(3),
                    problem_classes(&policies.problems)
                ),
                Err(_) => signature(&result),
            }
        }
        _ => "json".to_owned(),
    }
}

fn generate_policies(rng: &mut Rng) -> Vec<u8> {
    let props = |rng: &mut Rng| {
        let fields: Vec<String> = (0..rng.below(4))
            .map(|_| format!("{:?}:{:?}", rng.pick(&POLICY_KEYS), policy_value(rng)))
            .collect();
        format!("{{{}}}", fields.join(","))
    };
    let groups: Vec<String> = (0..rng.below(3))
        .map(|i| format!("{{\"name\":\"rg{i}\",\"props\":{}}}", props(rng)))
        .collect();
    let definitions: Vec<String> = (0..rng.below(4))
        .map(|i| {
            let mut fields = vec![format!("\"name\":\"r{i}\"")];
            if !rng.chance(4) {
                fields.push(format!("\"resource_group_name\":\"rg{}\"", rng.below(3)));
            }
            if !rng.chance(4) {
                fields.push(format!("\"props\":{}", props(rng)));
            }
            if rng.chance(6) {
                fields.push(format!(
                    "{:?}:{}",
                    rng.word(),
                    json_value(rng, &["props", "name"], 2)
                ));
            }
            format!("{{{}}}", fields.join(","))
        })
        .collect();
    format!("[{}]\0[{}]", groups.join(","), definitions.join(",")).into_bytes()
}

// --- pressure reports as the fetcher reads them ---

fn run_pressure(input: &[u8]) -> String {
    if input.len() > crate::pressure::MAX_REPORT_BYTES {
        return "too-large".to_owned();
    }
    match serde_json::from_slice::<crate::pressure::PressureReport>(input) {
        Ok(report) => {
            let checked = report.check();
            for volume in &report.resources {
                let _ = report.volume(&volume.resource, volume.volume);
                let _ = crate::pressure::pressure(volume.write_latency_ms, volume.target_ms);
            }
            let _ = crate::pressure::path_host(&report.node);
            signature(&checked)
        }
        Err(e) => format!("json:{:?}", e.classify()),
    }
}

fn generate_pressure(rng: &mut Rng) -> Vec<u8> {
    const KEYS: [&str; 8] = [
        "resource",
        "volume",
        "write_latency_ms",
        "queue_depth",
        "foreground_kib_per_sec",
        "target_ms",
        "pressure",
        "extra",
    ];
    let volumes: Vec<String> = (0..rng.below(4))
        .map(|_| {
            let present: Vec<&str> = KEYS.iter().copied().filter(|_| !rng.chance(8)).collect();
            let fields: Vec<String> = present
                .iter()
                .map(|key| {
                    let value = match *key {
                        "resource" => format!("{:?}", rng.word()),
                        "extra" => json_value(rng, &KEYS, 1),
                        _ if rng.chance(6) => "null".to_owned(),
                        _ => rng.number(),
                    };
                    format!("{key:?}:{value}")
                })
                .collect();
            format!("{{{}}}", fields.join(","))
        })
        .collect();
    format!(
        "{{\"node\":{:?},\"window_ms\":{},\"resources\":[{}]}}",
        rng.word(),
        rng.number(),
        volumes.join(",")
    )
    .into_bytes()
}

// --- /proc/diskstats lines ---

fn run_diskstats(input: &[u8]) -> String {
    let text = text(input);
    let mut out = String::new();
    for line in text.lines().take(16) {
        out.push_str(&signature(&crate::diskstats::parse_stat(line)));
        out.push(';');
    }
    out.chars().take(160).collect()
}

fn generate_diskstats(rng: &mut Rng) -> Vec<u8> {
    let mut out = String::new();
    for _ in 0..1 + rng.below(3) {
        let fields = [4, 11, 14, 15, 18, 20][rng.below(6)];
        out.push_str(&format!(
            "{:>4} {:>7} {}",
            rng.below(300),
            rng.below(300),
            rng.pick(&["sda", "nvme0n1", "drbd1000", "dm-0", ""])
        ));
        for _ in 3..fields {
            out.push(' ');
            if rng.chance(8) {
                out.push_str(&rng.number());
            } else {
                out.push_str(&rng.below(1 << 20).to_string());
            }
        }
        out.push('\n');
    }
    out.into_bytes()
}

// --- netlink link and address messages, decoded as the watcher does ---

fn run_netlink(input: &[u8]) -> String {
    let Some((&kind, body)) = input.split_first() else {
        return "empty".to_owned();
    };
    if kind % 2 == 0 {
        match LinkMessage::parse(body) {
            Ok(message) => match crate::netlink::convert::link_of(&message) {
                Some(_) => "link".to_owned(),
                None => "link-unnamed".to_owned(),
            },
            Err(_) => "link-err".to_owned(),
        }
    } else {
        match AddressMessage::parse(body) {
            Ok(message) => match crate::netlink::convert::address_of(&message) {
                Some((ip, _)) if ip.is_ipv4() => "address4".to_owned(),
                Some(_) => "address6".to_owned(),
                None => "address-none".to_owned(),
            },
            Err(_) => "address-err".to_owned(),
        }
    }
}

fn generate_netlink(rng: &mut Rng) -> Vec<u8> {
    let (kind, mut bytes) = if rng.chance(2) {
        let mut message = LinkMessage::default();
        message.header.index = rng.below(64) as u32;
        if !rng.chance(5) {
            message.attributes.push(LinkAttribute::IfName(rng.word()));
        }
        if rng.chance(2) {
            message
                .attributes
                .push(LinkAttribute::Mtu(rng.next_u64() as u32));
        }
        if rng.chance(2) {
            message
                .attributes
                .push(LinkAttribute::Carrier(rng.below(2) as u8));
        }
        if rng.chance(3) {
            message
                .attributes
                .push(LinkAttribute::Link(rng.below(8) as u32));
        }
        let mut buffer = vec![0u8; message.buffer_len()];
        message.emit(&mut buffer);
        (0u8, buffer)
    } else {
        let mut message = AddressMessage::default();
        message.header.index = rng.below(64) as u32;
        let v4 = std::net::IpAddr::from([10, 0, rng.below(4) as u8, rng.below(255) as u8]);
        let v6 = std::net::IpAddr::from([0xfd00, 0, 0, 0, 0, 0, 0, rng.below(9) as u16]);
        if rng.chance(2) {
            message.attributes.push(AddressAttribute::Local(v4));
        }
        if rng.chance(2) {
            message
                .attributes
                .push(AddressAttribute::Address(rng.pick(&[v4, v6])));
        }
        if rng.chance(3) {
            message.attributes.push(AddressAttribute::Label(rng.word()));
        }
        let mut buffer = vec![0u8; message.buffer_len()];
        message.emit(&mut buffer);
        (1u8, buffer)
    };
    // Sometimes a damaged length or type field.
    if rng.chance(3) && bytes.len() > 2 {
        let at = rng.below(bytes.len());
        bytes[at] = rng.next_u64() as u8;
    }
    bytes.insert(0, kind);
    bytes
}

// --- the web config (an operator's file, read on start and reload) ---

fn run_web_config(input: &[u8]) -> String {
    let text = text(input);
    // Relative file names resolve under a directory that does not exist.
    let result = crate::api::WebConfig::parse(
        std::path::Path::new("/nonexistent/drbd-agent-fuzz/web.yml"),
        &text,
    );
    let out = signature(&result);
    // Keep the field name (the part that tells error classes apart).
    out.chars().take(64).collect()
}

fn generate_web_config(rng: &mut Rng) -> Vec<u8> {
    let mut out = String::new();
    if rng.chance(2) {
        out.push_str("tls_server_config:\n");
        for (key, values) in [
            ("cert_file", &["server.crt", "", "/etc/x"][..]),
            ("key_file", &["server.key", "''"][..]),
            (
                "client_auth_type",
                &[
                    "RequireAndVerifyClientCert",
                    "NoClientCert",
                    "RequestClientCert",
                    "Bogus",
                ][..],
            ),
            ("client_ca_file", &["ca.crt"][..]),
            ("min_version", &["TLS12", "TLS13", "TLS10", "SSL3"][..]),
            ("max_version", &["TLS12", "TLS13"][..]),
            (
                "cert",
                &["|\n    -----BEGIN CERTIFICATE-----\n    AAAA\n    -----END CERTIFICATE-----"][..],
            ),
        ] {
            if rng.chance(2) {
                out.push_str(&format!("  {key}: {}\n", rng.pick(values)));
            }
        }
    }
    if rng.chance(2) {
        out.push_str("basic_auth_users:\n");
        for _ in 0..rng.below(3) {
            let hash = rng.pick(&[
                "$2y$10$X0xzDdbJP2HbD5fGLmQUVeZ2mQq0u3d.eETrMlM2mUuV0PpAbDVsu",
                "$2b$04$abc",
                "plain",
                "",
            ]);
            out.push_str(&format!("  {}: {hash:?}\n", rng.word()));
        }
    }
    if rng.chance(3) {
        out.push_str(&format!(
            "http_server_config:\n  http2: {}\n  headers:\n    {}: {:?}\n",
            rng.pick(&["true", "no", "3"]),
            rng.pick(&["X-Frame-Options", "Bad Header", "Strict-Transport-Security"]),
            rng.word()
        ));
    }
    if rng.chance(6) {
        out.push_str(&format!("{}: {}\n", rng.word(), rng.word()));
    }
    out.into_bytes()
}
