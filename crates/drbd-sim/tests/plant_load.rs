//! Load profiles give the right rates at the right times; traces parse or
//! fail naming the line; a plant driven by a profile writes what it says.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::time::Duration;

use drbd_sim::plant::*;

fn w(p: &LoadProfile, t: f64) -> f64 {
    p.at(t).write_mib_s
}

#[test]
fn constant_steps_bursts_and_diurnal() {
    let c = LoadProfile::Constant {
        write_mib_s: 40.0,
        read_mib_s: 5.0,
    };
    assert_eq!(
        c.at(1234.5),
        Rates {
            write_mib_s: 40.0,
            read_mib_s: 5.0
        }
    );

    let s = LoadProfile::Steps(vec![(10.0, 20.0), (60.0, 70.0), (120.0, 20.0)]);
    s.validate().unwrap();
    assert_eq!(w(&s, 0.0), 0.0);
    assert_eq!(w(&s, 10.0), 20.0);
    assert_eq!(w(&s, 59.9), 20.0);
    assert_eq!(w(&s, 60.0), 70.0);
    assert_eq!(w(&s, 500.0), 20.0);

    let b = LoadProfile::Bursts {
        period_s: 10.0,
        duty: 0.3,
        level_mib_s: 80.0,
    };
    assert_eq!(w(&b, 0.0), 80.0);
    assert_eq!(w(&b, 2.9), 80.0);
    assert_eq!(w(&b, 3.1), 0.0);
    assert_eq!(w(&b, 12.0), 80.0);

    let d = LoadProfile::Diurnal {
        min_mib_s: 10.0,
        max_mib_s: 90.0,
        period_s: 86_400.0,
    };
    assert!((w(&d, 0.0) - 10.0).abs() < 1e-9);
    assert!((w(&d, 43_200.0) - 90.0).abs() < 1e-9);
    assert!((w(&d, 21_600.0) - 50.0).abs() < 1e-9);
}

#[test]
fn traces_parse_and_hold_each_row() {
    let text = "# recorded on node-a\ntime,write,read\n0, 10, 1\n5.5;20;2\n\n10 0 0 # idle\n";
    let t = parse_trace(text).unwrap();
    assert_eq!(t.at(-1.0), Rates::default());
    assert_eq!(
        t.at(0.0),
        Rates {
            write_mib_s: 10.0,
            read_mib_s: 1.0
        }
    );
    assert_eq!(t.at(5.4).write_mib_s, 10.0);
    assert_eq!(
        t.at(5.5),
        Rates {
            write_mib_s: 20.0,
            read_mib_s: 2.0
        }
    );
    assert_eq!(t.at(1e6).write_mib_s, 0.0);
}

#[test]
fn bad_traces_name_the_line() {
    let cases = [
        ("0,1,1\n1,2\n", 2, "expected 3 fields"),
        ("0,1,1\n1,x,2\n", 2, "write MiB/s 'x' is not a number"),
        ("time,w,r\n0,1,1\n0,1,1\n", 3, "not after"),
        ("0,-1,0\n", 1, ">= 0"),
        ("0,1,NaN\n", 1, "finite"),
        ("0,1,1\nhello,1,1\n", 2, "time 'hello' is not a number"),
    ];
    for (text, line, what) in cases {
        match parse_trace(text) {
            Err(LoadError::Trace { line: l, reason }) => {
                assert_eq!(l, line, "{text:?}: {reason}");
                assert!(reason.contains(what), "{text:?}: {reason}");
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
    assert_eq!(parse_trace("# nothing\n\n"), Err(LoadError::EmptyTrace));
    let e = parse_trace("0,1,1\n1,2\n").unwrap_err().to_string();
    assert!(e.starts_with("trace line 2:"), "{e}");
}

#[test]
fn bad_profiles_are_refused() {
    let bad = [
        LoadProfile::Steps(vec![]),
        LoadProfile::Steps(vec![(5.0, 1.0), (5.0, 2.0)]),
        LoadProfile::Bursts {
            period_s: 10.0,
            duty: 1.5,
            level_mib_s: 1.0,
        },
        LoadProfile::Diurnal {
            min_mib_s: 9.0,
            max_mib_s: 1.0,
            period_s: 10.0,
        },
        LoadProfile::Constant {
            write_mib_s: f64::INFINITY,
            read_mib_s: 0.0,
        },
    ];
    for p in bad {
        assert!(p.validate().is_err(), "{p:?}");
    }
}

#[test]
fn the_plant_writes_what_the_profile_asks_when() {
    let mut p = Plant::new(5);
    let a = p.add_node("a", DiskSpec::default()).unwrap();
    let b = p.add_node("b", DiskSpec::default()).unwrap();
    p.add_link(a, b, LinkSpec::default()).unwrap();
    let mut v = VolumeSpec::new("r0/0", a, vec![b]);
    v.write_io_kib = 64.0;
    v.load = LoadProfile::Steps(vec![(0.0, 40.0), (10.0, 140.0), (20.0, 40.0)]);
    let v = p.add_volume(v).unwrap();
    let ws = p.step(Duration::from_secs(30));
    for w in &ws {
        let want = if (10.0..20.0).contains(&w.start_s) {
            140.0
        } else {
            40.0
        };
        assert!((w.volumes[0].write_mib_s - want).abs() < 1e-6, "{w:?}");
        assert!((w.nodes[1].write_mib_s - want).abs() < 1e-6, "replica");
    }
    // Latency follows the load.
    assert!(ws[15].volumes[0].write_mean_ms > ws[5].volumes[0].write_mean_ms);
    p.set_load(v, parse_trace("0,0,0\n35,10,30\n").unwrap())
        .unwrap();
    let ws = p.step(Duration::from_secs(10));
    assert_eq!(ws[0].volumes[0].write_mib_s, 0.0);
    let last = ws.last().unwrap();
    assert!((last.volumes[0].write_mib_s - 10.0).abs() < 1e-6);
    assert!((last.volumes[0].read_mib_s - 30.0).abs() < 1e-6);
    assert!((last.nodes[0].read_mib_s - 30.0).abs() < 1e-6);
}
