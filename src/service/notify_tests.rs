use super::*;

fn facts(settled: bool, status: &str) -> Facts {
    Facts {
        drbd_settled: settled,
        healthy: true,
        status: status.to_owned(),
    }
}

fn status(drbd: DrbdAvailability) -> StatusFacts {
    StatusFacts {
        drbd,
        resources: 3,
        resyncs: 1,
        throttled: 0,
        linstor: "not configured".to_owned(),
        reload_error: None,
    }
}

#[test]
fn ready_only_once_settled_and_only_once() {
    let t0 = Instant::now();
    let mut n = Notifier::new(None);
    assert_eq!(
        n.tick(t0, &facts(false, "a")),
        vec![Message::Status("a".into())]
    );
    assert_eq!(n.tick(t0, &facts(false, "a")), vec![]);
    assert_eq!(n.phase(), Phase::Starting);
    assert_eq!(n.tick(t0, &facts(true, "a")), vec![Message::Ready]);
    assert_eq!(n.tick(t0, &facts(true, "a")), vec![]);
    assert_eq!(
        n.tick(t0, &facts(true, "b")),
        vec![Message::Status("b".into())]
    );
}

#[test]
fn watchdog_every_interval_from_ticks() {
    let t0 = Instant::now();
    let every = Duration::from_secs(10);
    let mut n = Notifier::new(Some(every));
    let f = facts(true, "s");
    assert!(n.tick(t0, &f).contains(&Message::Watchdog));
    assert!(!n.tick(t0 + every / 2, &f).contains(&Message::Watchdog));
    assert!(n.tick(t0 + every, &f).contains(&Message::Watchdog));
    assert!(!n
        .tick(t0 + every + every / 3, &f)
        .contains(&Message::Watchdog));
    // No tick for a long time (a wedged loop) sends nothing by itself; the
    // next tick pings once.
    assert_eq!(n.tick(t0 + every * 10, &f), vec![Message::Watchdog]);
}

#[test]
fn no_watchdog_while_unhealthy() {
    let t0 = Instant::now();
    let every = Duration::from_secs(1);
    let mut n = Notifier::new(Some(every));
    let mut sick = facts(true, "s");
    sick.healthy = false;
    assert!(!n.tick(t0, &sick).contains(&Message::Watchdog));
    assert!(!n.tick(t0 + every * 3, &sick).contains(&Message::Watchdog));
    assert!(n
        .tick(t0 + every * 4, &facts(true, "s"))
        .contains(&Message::Watchdog));
}

#[test]
fn reload_sequence() {
    let t0 = Instant::now();
    let mut n = Notifier::new(None);
    n.tick(t0, &facts(true, "s"));
    assert_eq!(
        n.reloading(1234),
        vec![Message::Reloading, Message::MonotonicUsec(1234)]
    );
    assert_eq!(n.reloading(1300), vec![], "no nested reload");
    assert_eq!(
        n.reloaded(&facts(true, "s; reload failed")),
        vec![Message::Status("s; reload failed".into()), Message::Ready]
    );
    assert_eq!(n.phase(), Phase::Ready);
    assert_eq!(n.reloaded(&facts(true, "x")), vec![], "not reloading");
    assert_eq!(
        datagram(&[Message::Reloading, Message::MonotonicUsec(7)]),
        "RELOADING=1\nMONOTONIC_USEC=7\n"
    );
}

#[test]
fn reload_before_ready_does_not_claim_ready() {
    let t0 = Instant::now();
    let mut n = Notifier::new(None);
    n.tick(t0, &facts(false, "s"));
    assert_eq!(n.reloading(5).len(), 2);
    assert_eq!(n.reloaded(&facts(false, "s")), vec![]);
    assert_eq!(n.phase(), Phase::Starting);
    assert_eq!(n.tick(t0, &facts(true, "s")), vec![Message::Ready]);
}

#[test]
fn stopping_is_last() {
    let t0 = Instant::now();
    let mut n = Notifier::new(Some(Duration::from_secs(1)));
    n.tick(t0, &facts(true, "s"));
    assert_eq!(n.stopping(), vec![Message::Stopping]);
    assert_eq!(n.stopping(), vec![]);
    assert_eq!(
        n.tick(t0 + Duration::from_secs(5), &facts(true, "t")),
        vec![]
    );
    assert_eq!(n.reloading(1), vec![]);
}

#[test]
fn ping_interval_respects_pid() {
    assert_eq!(
        ping_interval(Some("30000000"), None, 7),
        Some(Duration::from_secs(15))
    );
    assert_eq!(
        ping_interval(Some("2000000"), Some("7"), 7),
        Some(Duration::from_secs(1))
    );
    assert_eq!(ping_interval(Some("2000000"), Some("8"), 7), None);
    assert_eq!(ping_interval(Some("2000000"), Some("x"), 7), None);
    assert_eq!(ping_interval(Some("0"), None, 7), None);
    assert_eq!(ping_interval(Some("soon"), None, 7), None);
    assert_eq!(ping_interval(None, Some("7"), 7), None);
}

#[test]
fn status_line_is_one_bounded_line() {
    assert_eq!(
        status_line(&status(DrbdAvailability::Up)),
        "drbd: up; resources: 3; resyncs: 1; throttled: 0; linstor: not configured"
    );
    let mut f = status(DrbdAvailability::Unavailable("exit code 20".into()));
    f.reload_error = Some("agent.toml:3: bad\nvalue".into());
    let line = status_line(&f);
    assert!(
        line.starts_with("drbd: unavailable (exit code 20);"),
        "{line}"
    );
    assert!(
        line.ends_with("old config in force: agent.toml:3: bad value"),
        "{line}"
    );
    f.reload_error = Some("é".repeat(500));
    let line = status_line(&f);
    assert!(line.len() <= MAX_STATUS && !line.contains('\n'));
    assert!(status_line(&status(DrbdAvailability::Waiting)).starts_with("drbd: waiting"));
}
