//! The plant as the throttle benchmark will drive it: two nodes, one
//! volume, one resync from the Primary to the Secondary.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::time::Duration;

use drbd_sim::options::PeerDeviceOptions;
use drbd_sim::plant::*;

/// A disk where 100 MiB/s of 64 KiB writes (50 %) see S/(1−ρ) = 5.7 ms.
fn disk() -> DiskSpec {
    DiskSpec {
        capacity_mib_s: 200.0,
        capacity_iops: 20_000.0,
        service_ms: 2.85,
        queue_limit: 256.0,
        noise: 0.1,
    }
}

struct Setup {
    app_mib_s: f64,
    options: PeerDeviceOptions,
    link_mib_s: f64,
    io_kib: f64,
    seed: u64,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            app_mib_s: 100.0,
            options: PeerDeviceOptions::default(),
            link_mib_s: 1150.0,
            io_kib: 64.0,
            seed: 7,
        }
    }
}

fn build(s: &Setup, resync: bool) -> (Plant, VolumeId, Option<ResyncId>) {
    let mut p = Plant::new(s.seed);
    let a = p.add_node("a", disk()).unwrap();
    let b = p.add_node("b", disk()).unwrap();
    p.add_link(
        a,
        b,
        LinkSpec {
            bandwidth_mib_s: s.link_mib_s,
            rtt_ms: 0.2,
        },
    )
    .unwrap();
    let mut v = VolumeSpec::new("r0/0", a, vec![b]);
    v.load = LoadProfile::Constant {
        write_mib_s: s.app_mib_s,
        read_mib_s: 0.0,
    };
    v.write_io_kib = 64.0;
    let v = p.add_volume(v).unwrap();
    let r = resync.then(|| {
        let mut r = ResyncSpec::new(v, a, b, 100.0 * 1024.0 * 1024.0);
        r.target_options = s.options;
        r.source_options = s.options;
        r.io_kib = s.io_kib;
        p.start_resync(r).unwrap()
    });
    (p, v, r)
}

/// Mean over windows `from..` of a value.
fn mean(ws: &[Window], from: usize, f: impl Fn(&Window) -> f64) -> f64 {
    let xs = &ws[from..];
    xs.iter().map(f).sum::<f64>() / xs.len() as f64
}

fn rate(w: &Window) -> f64 {
    w.resyncs[0].rate_kib_s
}

fn write_ms(w: &Window) -> f64 {
    w.volumes[0].write_mean_ms
}

#[test]
fn unthrottled_resync_pushes_write_latency_up_an_order_of_magnitude() {
    let (mut idle, _, _) = build(&Setup::default(), false);
    let base = mean(&idle.step(Duration::from_secs(60)), 10, write_ms);
    assert!((5.0..8.0).contains(&base), "idle latency {base}");
    // A fixed 500 MB/s resync, as reported in resync-control.md.
    let s = Setup {
        options: PeerDeviceOptions {
            c_plan_ahead: 0,
            resync_rate: 488_281,
            c_min_rate: 0,
            ..PeerDeviceOptions::default()
        },
        ..Setup::default()
    };
    let (mut p, _, _) = build(&s, true);
    let ws = p.step(Duration::from_secs(60));
    let busy = mean(&ws, 10, write_ms);
    assert!(busy > 8.0 * base && busy.is_finite(), "{base} -> {busy}");
    let p99 = mean(&ws, 10, |w| w.volumes[0].write_p99_ms);
    assert!(p99 > 100.0 && p99 < 10_000.0, "{p99}");
    // The disks are saturated, not beyond: app + resync ≤ capacity.
    for w in &ws {
        for n in &w.nodes {
            assert!(n.read_mib_s + n.write_mib_s <= 200.0 + 1e-6, "{n:?}");
        }
    }
    // The default controller (c-max-rate 100 MiB/s, no c-min-rate) too.
    let s = Setup {
        options: PeerDeviceOptions {
            c_min_rate: 0,
            ..PeerDeviceOptions::default()
        },
        ..Setup::default()
    };
    let (mut p, _, _) = build(&s, true);
    let busy = mean(&p.step(Duration::from_secs(60)), 10, write_ms);
    assert!(busy > 5.0 * base, "{base} -> {busy}");
}

#[test]
fn c_min_rate_pins_the_resync_under_steady_ingest() {
    for io_kib in [16.0, 64.0] {
        let s = Setup {
            io_kib,
            ..Setup::default()
        };
        let (mut p, _, _) = build(&s, true);
        let ws = p.step(Duration::from_secs(600));
        let pinned = mean(&ws, 60, rate);
        assert!(
            (150.0..=320.0).contains(&pinned),
            "{io_kib}: {pinned} KiB/s"
        );
        // At that pace a 100 GiB leg takes days.
        let days = 100.0 * 1024.0 * 1024.0 / pinned / 86_400.0;
        assert!(days > 3.0, "{days}");
        assert!(ws[60..]
            .iter()
            .any(|w| w.resyncs[0].target_throttled_ticks > 0));
    }
}

#[test]
fn c_min_rate_gives_full_speed_on_an_idle_disk() {
    let s = Setup {
        app_mib_s: 0.0,
        ..Setup::default()
    };
    let (mut p, _, _) = build(&s, true);
    let ws = p.step(Duration::from_secs(60));
    let r = mean(&ws, 10, rate);
    assert!((r - 102_400.0).abs() < 1.0, "{r}"); // c-max-rate
    assert!(ws.iter().all(|w| w.resyncs[0].target_throttled_ticks == 0));
}

#[test]
fn c_max_rate_caps_and_can_change_at_run_time() {
    let s = Setup {
        options: PeerDeviceOptions {
            c_max_rate: 20_480,
            c_min_rate: 0,
            ..PeerDeviceOptions::default()
        },
        ..Setup::default()
    };
    let (mut p, _, r) = build(&s, true);
    let r = r.unwrap();
    let ws = p.step(Duration::from_secs(30));
    assert!(ws.iter().all(|w| rate(w) <= 20_480.0 + 1e-6));
    assert!((mean(&ws, 5, rate) - 20_480.0).abs() < 50.0);
    let mut o = s.options;
    o.c_max_rate = 5_120;
    p.set_target_options(r, o).unwrap();
    let ws = p.step(Duration::from_secs(30));
    assert!(ws[2..].iter().all(|w| rate(w) <= 5_120.0 + 1e-6));
    assert!((mean(&ws, 5, rate) - 5_120.0).abs() < 50.0);
    assert_eq!(p.resync_status(r).unwrap().target_options.c_max_rate, 5_120);
}

#[test]
fn fixed_rate_when_plan_ahead_is_zero() {
    let s = Setup {
        app_mib_s: 0.0,
        options: PeerDeviceOptions {
            c_plan_ahead: 0,
            resync_rate: 8_000,
            ..PeerDeviceOptions::default()
        },
        ..Setup::default()
    };
    let (mut p, _, _) = build(&s, true);
    let ws = p.step(Duration::from_secs(20));
    // 800 KiB per tick is 200 whole 4 KiB blocks.
    assert!(ws.iter().all(|w| (rate(w) - 8_000.0).abs() < 1e-6));
}

#[test]
fn a_link_bound_resync_runs_at_the_links_speed() {
    let s = Setup {
        app_mib_s: 20.0,
        link_mib_s: 50.0,
        options: PeerDeviceOptions {
            c_min_rate: 0,
            ..PeerDeviceOptions::default()
        },
        ..Setup::default()
    };
    let (mut p, _, _) = build(&s, true);
    let ws = p.step(Duration::from_secs(60));
    let r = mean(&ws, 10, rate);
    // Replication first (20 MiB/s), resync gets the other 30.
    assert!((r - 30.0 * 1024.0).abs() < 100.0, "{r}");
    assert!(ws
        .iter()
        .all(|w| (w.volumes[0].write_mib_s - 20.0).abs() < 1e-6));
}

#[test]
fn a_resync_finishes_and_reports_when() {
    let s = Setup {
        app_mib_s: 0.0,
        ..Setup::default()
    };
    let mut p = Plant::new(1);
    let a = p.add_node("a", disk()).unwrap();
    let b = p.add_node("b", disk()).unwrap();
    p.add_link(a, b, LinkSpec::default()).unwrap();
    let v = p.add_volume(VolumeSpec::new("r0/0", a, vec![b])).unwrap();
    let mut spec = ResyncSpec::new(v, a, b, 1024.0 * 1024.0); // 1 GiB
    spec.target_options = s.options;
    let r = p.start_resync(spec).unwrap();
    assert!(p.run_until_synced(Duration::from_secs(60)));
    let st = p.resync_status(r).unwrap();
    assert_eq!(st.left_kib, 0.0);
    let done = st.done_at_s.unwrap();
    // 1 GiB at c-max-rate 100 MiB/s after a short ramp.
    assert!((10.0..13.0).contains(&done), "{done}");
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let run = |seed| {
        let (mut p, v, _) = build(
            &Setup {
                seed,
                ..Setup::default()
            },
            true,
        );
        let ws = p.step(Duration::from_secs(30));
        (ws, p.device_stat_text(v).unwrap())
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3).1, run(4).1);
}

#[test]
fn stat_files_agree_with_the_windows() {
    let (mut p, v, _) = build(&Setup::default(), true);
    let a = p.node_id("a").unwrap();
    let mut prev_dev = p.device_stats(v).unwrap();
    let mut prev_back = p.backing_stats(a).unwrap();
    for _ in 0..20 {
        let w = p.step(Duration::from_secs(1)).pop().unwrap();
        let dev = p.device_stats(v).unwrap();
        let back = p.backing_stats(a).unwrap();
        let writes = (dev.writes - prev_dev.writes) as f64;
        let ms = (dev.ms_writing - prev_dev.ms_writing) as f64;
        let vw = &w.volumes[0];
        // Δms_writing / Δwrites is the window's mean write latency.
        assert!((ms / writes - vw.write_mean_ms).abs() < 0.01 * vw.write_mean_ms + 0.01);
        // Δweighted / Δt is the queue depth.
        let q = (dev.time_in_queue - prev_dev.time_in_queue) as f64 / 1000.0;
        assert!(
            (q - vw.queue_depth).abs() < 0.01 + 0.01 * q,
            "{q} {}",
            vw.queue_depth
        );
        // 100 MiB/s of writes is 204 800 sectors a second.
        let sectors = (dev.sectors_written - prev_dev.sectors_written) as f64;
        assert!((sectors - 204_800.0).abs() <= 1.0, "{sectors}");
        // The backing device sees application I/O and resync reads too.
        assert!(
            back.sectors_written - prev_back.sectors_written
                >= dev.sectors_written - prev_dev.sectors_written - 1
        );
        assert!(back.sectors_read > prev_back.sectors_read || w.resyncs[0].rate_kib_s == 0.0);
        assert!(dev.io_ticks - prev_dev.io_ticks <= 1000);
        assert_eq!(dev.reads, 0);
        prev_dev = dev;
        prev_back = back;
    }
    let text = p.device_stat_text(v).unwrap();
    assert_eq!(text.split_whitespace().count(), 17);
}

#[test]
fn bad_plants_are_refused_with_names() {
    let mut p = Plant::new(1);
    let a = p.add_node("a", disk()).unwrap();
    let b = p.add_node("b", disk()).unwrap();
    assert!(matches!(
        p.add_node("a", disk()),
        Err(PlantError::Duplicate(_))
    ));
    let err = p
        .add_volume(VolumeSpec::new("r0/0", a, vec![b]))
        .unwrap_err();
    assert_eq!(err.to_string(), "no link between 'a' and 'b'");
    p.add_link(a, b, LinkSpec::default()).unwrap();
    assert!(p.add_link(a, a, LinkSpec::default()).is_err());
    let bad = LinkSpec {
        bandwidth_mib_s: -1.0,
        rtt_ms: 0.1,
    };
    assert!(p
        .add_link(a, b, bad)
        .unwrap_err()
        .to_string()
        .contains("bandwidth"));
    let v = p.add_volume(VolumeSpec::new("r0/0", a, vec![b])).unwrap();
    let c = p.add_node("c", disk()).unwrap();
    let err = p.start_resync(ResyncSpec::new(v, a, c, 10.0)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "node 'c' holds no replica of volume 'r0/0'"
    );
    let err = p
        .start_resync(ResyncSpec::new(v, a, b, f64::NAN))
        .unwrap_err();
    assert!(err.to_string().contains("out_of_sync_kib"), "{err}");
    assert!(p
        .set_target_options(ResyncId(9), PeerDeviceOptions::default())
        .is_err());
    let err = p
        .set_load(
            v,
            LoadProfile::Bursts {
                period_s: 0.0,
                duty: 0.5,
                level_mib_s: 1.0,
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("period"), "{err}");
}

#[test]
fn the_sources_c_min_rate_alone_pins_it_too() {
    let (mut p, _, r) = build(&Setup::default(), true);
    let r = r.unwrap();
    let target = PeerDeviceOptions {
        c_min_rate: 0,
        ..PeerDeviceOptions::default()
    };
    p.set_target_options(r, target).unwrap();
    let ws = p.step(Duration::from_secs(300));
    let pinned = mean(&ws, 60, rate);
    assert!(pinned < 1000.0, "{pinned} KiB/s");
    assert!(ws[60..]
        .iter()
        .all(|w| w.resyncs[0].target_throttled_ticks == 0));
    // Neutralised on both sides, the same resync runs at disk speed.
    let source = PeerDeviceOptions {
        c_min_rate: 0,
        ..PeerDeviceOptions::default()
    };
    p.set_source_options(r, source).unwrap();
    let free = mean(&p.step(Duration::from_secs(60)), 10, rate);
    assert!(free > 50.0 * pinned, "{pinned} -> {free}");
}
