//! The simulated `/dev`: each node's backing disk paths (`/dev/vg0/r0_0`)
//! as symbolic links to the kernel-style device name (`DIR/<node>/dev/dm-0`),
//! so an agent whose `sysfs-root` is `DIR/<node>/sys` resolves a volume's
//! `backing_dev` to the stat file the simulator writes, as it would on a
//! real node (`/dev/vg0/r0_0` → `/dev/dm-0` → `/sys/class/block/dm-0/stat`).

use std::path::{Component, Path, PathBuf};

use super::scenario::Scenario;
use super::server::StatFiles;

/// One link to make: `link` (relative to the serve directory) points at the
/// device file `device` (relative too). The device file is an empty regular
/// file: only its name matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DevLink {
    pub link: PathBuf,
    pub device: PathBuf,
}

/// The links for the nodes that get stat files. The first node's files are
/// under `DIR/sys` (and `DIR/<first>/sys`), so it gets both `DIR/dev` and
/// `DIR/<first>/dev`. Backing paths that are not plain absolute paths under
/// `/dev` are skipped.
pub(crate) fn dev_links(scenario: &Scenario, stat_files: StatFiles) -> Vec<DevLink> {
    let first = scenario.nodes.first().map(|n| n.name.as_str());
    let mut out = Vec::new();
    for resource in &scenario.resources {
        for node in &resource.nodes {
            let is_first = Some(node.as_str()) == first;
            let roots: Vec<PathBuf> = match stat_files {
                StatFiles::None => Vec::new(),
                StatFiles::First if !is_first => Vec::new(),
                StatFiles::First => vec![PathBuf::new()],
                StatFiles::All if is_first => vec![PathBuf::new(), PathBuf::from(node)],
                StatFiles::All => vec![PathBuf::from(node)],
            };
            for volume in &resource.volumes {
                let Some(relative) = relative_dev_path(&volume.backing_disk) else {
                    continue;
                };
                for root in &roots {
                    out.push(DevLink {
                        link: root.join(&relative),
                        device: root.join("dev").join(&volume.backing_device),
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| a.link.cmp(&b.link));
    out.dedup();
    out
}

/// `/dev/vg0/r0_0` → `dev/vg0/r0_0`; `None` for anything else (relative
/// paths, `..`, paths outside `/dev`, `/dev` itself).
fn relative_dev_path(path: &str) -> Option<PathBuf> {
    let mut parts = Path::new(path).components();
    if parts.next() != Some(Component::RootDir) {
        return None;
    }
    if parts.next() != Some(Component::Normal("dev".as_ref())) {
        return None;
    }
    let mut out = PathBuf::from("dev");
    let mut any = false;
    for part in parts {
        match part {
            Component::Normal(p) => {
                out.push(p);
                any = true;
            }
            _ => return None,
        }
    }
    any.then_some(out)
}

/// Makes the links under `dir` (replacing stale ones). Errors are logged:
/// without the links the agent only lacks the backing device's signal.
pub(crate) fn make_dev_links(dir: &Path, links: &[DevLink]) {
    for DevLink { link, device } in links {
        let (link, device) = (dir.join(link), dir.join(device));
        let made = (|| -> std::io::Result<()> {
            if let Some(parent) = device.parent() {
                std::fs::create_dir_all(parent)?;
            }
            if !device.exists() {
                std::fs::write(&device, b"")?;
            }
            if let Some(parent) = link.parent() {
                std::fs::create_dir_all(parent)?;
            }
            if link.symlink_metadata().is_ok() {
                std::fs::remove_file(&link)?;
            }
            std::os::unix::fs::symlink(&device, &link)
        })();
        if let Err(error) = made {
            tracing::warn!(link = %link.display(), device = %device.display(), %error, "backing device link not made");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = r#"
[[node]]
name = "alpha"
node-id = 0
[[node]]
name = "bravo"
node-id = 1
[[resource]]
name = "r0"
[[resource.volume]]
volume = 0
minor = 1000
size = "1G"
backing-disk = "/dev/vg0/r0"
backing-device = "dm-0"
[[resource.volume]]
volume = 1
minor = 1001
size = "1G"
backing-disk = "/srv/images/r0_1"
backing-device = "loop1"
"#;

    fn link(link: &str, device: &str) -> DevLink {
        DevLink {
            link: link.into(),
            device: device.into(),
        }
    }

    #[test]
    fn links_follow_where_stat_files_go() {
        let scenario = crate::scenario::parse("t.toml", TOML).unwrap();
        assert_eq!(
            dev_links(&scenario, StatFiles::All),
            vec![
                link("alpha/dev/vg0/r0", "alpha/dev/dm-0"),
                link("bravo/dev/vg0/r0", "bravo/dev/dm-0"),
                link("dev/vg0/r0", "dev/dm-0"),
            ]
        );
        assert_eq!(
            dev_links(&scenario, StatFiles::First),
            vec![link("dev/vg0/r0", "dev/dm-0")]
        );
        assert!(dev_links(&scenario, StatFiles::None).is_empty());
    }

    #[test]
    fn only_plain_dev_paths() {
        assert_eq!(relative_dev_path("/dev/sda1"), Some("dev/sda1".into()));
        assert_eq!(relative_dev_path("/dev"), None);
        assert_eq!(relative_dev_path("/srv/x"), None);
        assert_eq!(relative_dev_path("dev/x"), None);
        assert_eq!(relative_dev_path("/dev/../etc/x"), None);
    }

    #[test]
    fn made_links_resolve_to_the_device_name() {
        let dir = tempfile::tempdir().unwrap();
        let scenario = crate::scenario::parse("t.toml", TOML).unwrap();
        let links = dev_links(&scenario, StatFiles::All);
        make_dev_links(dir.path(), &links);
        // Twice: stale links are replaced, not an error.
        make_dev_links(dir.path(), &links);
        let real = std::fs::canonicalize(dir.path().join("bravo/dev/vg0/r0")).unwrap();
        assert_eq!(real.file_name().unwrap(), "dm-0");
    }
}
