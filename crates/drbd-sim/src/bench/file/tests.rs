use super::*;

fn ok(text: &str) -> Scenario {
    parse(Path::new("/s/x.toml"), text, |_| {
        Err(std::io::Error::other("no traces"))
    })
    .unwrap()
}

fn bad(text: &str) -> String {
    parse(Path::new("/s/x.toml"), text, |p| {
        if p == Path::new("/s/t.csv") {
            Ok("0,1\n".into())
        } else {
            Err(std::io::Error::other("not found"))
        }
    })
    .unwrap_err()
    .to_string()
}

const MINIMAL: &str = "[[volume]]\nout-of-sync-gib = 1.5\nload = \"constant\"\nwrite-mib-s = 50\n";

#[test]
fn minimal_file_takes_the_builtin_defaults() {
    let s = ok(MINIMAL);
    assert_eq!(s.name, "x");
    assert_eq!(s.disk, standard_disk());
    assert_eq!(s.link, LinkSpec::default());
    assert_eq!(s.target_p99, Duration::from_millis(30));
    assert_eq!(s.limit, Duration::from_secs(6 * 3600));
    assert_eq!(s.seed, 42);
    assert_eq!(s.volumes.len(), 1);
    assert_eq!(s.volumes[0].out_of_sync_kib, 1.5 * GIB);
    assert_eq!(
        s.volumes[0].load,
        LoadProfile::Constant {
            write_mib_s: 50.0,
            read_mib_s: 0.0
        }
    );
}

#[test]
fn every_knob() {
    let text = "name = \"n\"\ndescription = \"d\"\nlatency-target = \"12ms\"\nseed = 3\nlimit = \"1h\"\n\
[disk]\ncapacity-mib-s = 100\ncapacity-iops = 5000\nservice-ms = 2\nqueue-limit = 64\nnoise = 0\n\
[link]\nbandwidth-mib-s = 100\nrtt-ms = 1\n\
[[volume]]\nout-of-sync-gib = 1\ncount = 2\nload = \"bursts\"\nperiod = \"2m\"\nduty = 0.5\nlevel-mib-s = 70\n\
[[volume]]\nout-of-sync-gib = 2\nload = \"diurnal\"\nperiod = \"30m\"\nmin-mib-s = 10\nmax-mib-s = 70\n\
[[volume]]\nout-of-sync-gib = 3\nload = \"steps\"\nsteps = [[0, 10], [60.5, 20]]\n\
[[volume]]\nout-of-sync-gib = 4\nload = \"trace\"\ntrace = \"sub/t.csv\"\n";
    let s = parse(Path::new("/s/x.toml"), text, |p| {
        assert_eq!(p, Path::new("/s/sub/t.csv"), "relative to the file");
        Ok("t,w,r\n0,5,1\n10,6,2\n".into())
    })
    .unwrap();
    assert_eq!((s.name.as_str(), s.description.as_str()), ("n", "d"));
    assert_eq!(s.target_p99, Duration::from_millis(12));
    assert_eq!((s.seed, s.limit), (3, Duration::from_secs(3600)));
    assert_eq!(s.disk.capacity_mib_s, 100.0);
    assert_eq!(s.disk.capacity_iops, 5000.0);
    assert_eq!(s.disk.service_ms, 2.0);
    assert_eq!(s.disk.queue_limit, 64.0);
    assert_eq!(s.disk.noise, 0.0);
    assert_eq!(s.link.bandwidth_mib_s, 100.0);
    assert_eq!(s.link.rtt_ms, 1.0);
    assert_eq!(s.volumes.len(), 5, "count = 2 repeats the first");
    assert_eq!(s.volumes[0], s.volumes[1]);
    assert_eq!(
        s.volumes[0].load,
        LoadProfile::Bursts {
            period_s: 120.0,
            duty: 0.5,
            level_mib_s: 70.0
        }
    );
    assert_eq!(
        s.volumes[2].load,
        LoadProfile::Diurnal {
            min_mib_s: 10.0,
            max_mib_s: 70.0,
            period_s: 1800.0
        }
    );
    assert_eq!(
        s.volumes[3].load,
        LoadProfile::Steps(vec![(0.0, 10.0), (60.5, 20.0)])
    );
    assert!(matches!(&s.volumes[4].load, LoadProfile::Trace(rows) if rows.len() == 2));
    assert_eq!(s.volumes[4].out_of_sync_kib, 4.0 * GIB);
}

#[test]
fn errors_name_file_line_and_key() {
    let cases: &[(&str, &str)] = &[
        ("nope = 1\n", "/s/x.toml:1:1: key `nope`: unknown field"),
        ("seed = \"x\"\n[[volume]]\n", "/s/x.toml:1:8: key `seed`:"),
        (
            "[disk]\nnoise = -1\n[[volume]]\nout-of-sync-gib = 1\nload = \"constant\"\n",
            "/s/x.toml:2:9: key `disk.noise`: -1 is not a number ≥ 0",
        ),
        (
            "latency-target = \"1h\"\n",
            "/s/x.toml:1:18: key `latency-target`: ",
        ),
        ("limit = \"soon\"\n", "/s/x.toml:1:9: key `limit`: "),
        ("", "/s/x.toml:1:1: key `volume`: no [[volume]]"),
        (
            "[[volume]]\nout-of-sync-gib = 1\nload = \"wave\"\n",
            "/s/x.toml:3:8: key `volume[0].load`: unknown load \"wave\"",
        ),
        (
            "[[volume]]\nout-of-sync-gib = 0\nload = \"constant\"\n",
            "/s/x.toml:2:19: key `volume[0].out-of-sync-gib`: 0 is not a number > 0",
        ),
        (
            "[[volume]]\nout-of-sync-gib = 1\nload = \"constant\"\nduty = 0.5\n",
            "/s/x.toml:4:8: key `volume[0].duty`: does not apply to load = \"constant\"",
        ),
        (
            "[[volume]]\nout-of-sync-gib = 1\nload = \"bursts\"\nperiod = \"1m\"\nduty = 0.5\n",
            "/s/x.toml:3:8: key `volume[0].level-mib-s`: load = \"bursts\" needs level-mib-s",
        ),
        (
            "[[volume]]\nout-of-sync-gib = 1\nload = \"bursts\"\nperiod = \"1m\"\nduty = 2\nlevel-mib-s = 1\n",
            "/s/x.toml:3:8: key `volume[0].load`: load profile: duty 2 is not in 0..=1",
        ),
        (
            "[[volume]]\nout-of-sync-gib = 1\nload = \"steps\"\nsteps = [[5, 1], [1, 1]]\n",
            "/s/x.toml:3:8: key `volume[0].load`: load profile: steps:",
        ),
        (
            "[[volume]]\nout-of-sync-gib = 1\nload = \"trace\"\ntrace = \"t.csv\"\n",
            "/s/x.toml:4:9: key `volume[0].trace`: /s/t.csv: trace line 1: expected 3 fields",
        ),
        (
            "[[volume]]\nout-of-sync-gib = 1\nload = \"trace\"\ntrace = \"gone.csv\"\n",
            "/s/x.toml:4:9: key `volume[0].trace`: /s/gone.csv: not found",
        ),
        (
            "[[volume]]\nout-of-sync-gib = 1\ncount = 65\nload = \"constant\"\n",
            "/s/x.toml:3:9: key `volume[0].count`: 65: between 1 and 64",
        ),
        (
            "[[volume]]\nout-of-sync-gib = 1\nload = \"constant\"\ncolour = 1\n",
            "/s/x.toml:4:1: key `volume.colour`: unknown field `colour`",
        ),
    ];
    for (text, want) in cases {
        let got = bad(text);
        assert!(got.starts_with(want), "{text:?}\n got: {got}\nwant: {want}");
    }
}

#[test]
fn paths_and_names() {
    assert!(looks_like_path("x.toml"));
    assert!(looks_like_path("./steady"));
    assert!(!looks_like_path("steady"));
    assert!(matches!(
        load(Path::new("/nonexistent/dir/x.toml")),
        Err(ScenarioFileError::Read { .. })
    ));
}
