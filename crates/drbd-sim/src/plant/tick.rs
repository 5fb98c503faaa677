//! One 100 ms tick of the plant's physics, and the 1 s windows.

use super::link::{share, write_delay_ms};
use super::observe::{NodeAcc, ResyncAcc};
use super::resync::Gate;
use super::{
    DiskTick, Io, NodeId, NodeWindow, Plant, ResyncId, ResyncWindow, VolumeId, VolumeWindow,
    Window, TICK_S, WINDOW_TICKS,
};

/// One direction of one link during a tick.
#[derive(Debug, Clone, Default)]
struct Direction {
    replication_kib: f64,
    resyncs: Vec<usize>,
    accept: f64,
    rho: f64,
}

impl Plant {
    /// Index into the per-direction table for traffic `from` → `to`.
    fn direction(&self, from: NodeId, to: NodeId) -> Option<usize> {
        self.links.iter().enumerate().find_map(|(i, l)| {
            if l.a == from && l.b == to {
                Some(2 * i)
            } else if l.b == from && l.a == to {
                Some(2 * i + 1)
            } else {
                None
            }
        })
    }

    /// Runs one tick; returns the window it completed, if any.
    pub(super) fn tick_once(&mut self) -> Option<Window> {
        let dt = TICK_S;
        let now = self.tick;
        let t = self.now_s();

        // 1. What the applications ask for (KiB this tick).
        let demand: Vec<(f64, f64)> = self
            .volumes
            .iter()
            .map(|v| {
                let r = v.spec.load.at(t);
                (
                    r.write_mib_s.max(0.0) * 1024.0 * dt,
                    r.read_mib_s.max(0.0) * 1024.0 * dt,
                )
            })
            .collect();

        // 2. Resync requests from the targets, and what the sources serve.
        let mut resync_want = vec![0.0; self.resyncs.len()];
        for (i, r) in self.resyncs.iter_mut().enumerate() {
            if r.done_at_tick.is_some() {
                continue;
            }
            let sect_in = r.came_in_sectors.floor();
            r.came_in_sectors -= sect_in;
            let speedup = if r.backlog_kib < r.spec.io_kib {
                TICK_S * 1000.0 / r.response_ms.max(1e-3)
            } else {
                1.0
            };
            let mut sectors = r.pacer.tick(sect_in as i64, speedup);
            r.target_throttle.advance_marks(now, r.left_kib);
            r.source_throttle.advance_marks(now, r.left_kib);
            let target_foreign = self.nodes[r.spec.target.0].foreign_sectors;
            match r.target_throttle.gate(
                r.spec.target_options.c_min_rate,
                now,
                r.left_kib,
                target_foreign,
            ) {
                Gate::Open => {}
                Gate::Budget(kib) => sectors = sectors.min((kib * 2.0).ceil() as i64),
                Gate::Closed => {
                    sectors = 0;
                    r.acc.target_throttled += 1;
                }
            }
            // Never ask for more than is left (whole 4 KiB blocks).
            let unasked = (r.left_kib * 2.0 - r.pacer.in_flight_sectors() as f64).max(0.0);
            let unasked_blocks = (unasked / 8.0).ceil() as i64 * 8;
            r.pacer.sent((sectors / 8 * 8).min(unasked_blocks));
            let mut serve = (r.pacer.in_flight_sectors() as f64 / 2.0).min(r.left_kib);
            let target_is_primary = self.volumes[r.spec.volume.0].spec.primary == r.spec.target;
            let source_foreign = self.nodes[r.spec.source.0].foreign_sectors;
            if !target_is_primary {
                match r.source_throttle.gate(
                    r.spec.source_options.c_min_rate,
                    now,
                    r.left_kib,
                    source_foreign,
                ) {
                    Gate::Open => {}
                    Gate::Budget(kib) => serve = serve.min(kib.max(r.spec.io_kib)),
                    Gate::Closed => {
                        // The receiver sleeps 100 ms per request: one request a tick.
                        serve = serve.min(r.spec.io_kib);
                        r.acc.source_throttled += 1;
                    }
                }
            }
            resync_want[i] = serve;
        }

        // 3. Links: replication first, resync shares the rest.
        let mut dirs = vec![Direction::default(); self.links.len() * 2];
        let mut peer_dirs: Vec<Vec<Option<usize>>> = Vec::with_capacity(self.volumes.len());
        for (v, vol) in self.volumes.iter().enumerate() {
            let list: Vec<Option<usize>> = vol
                .spec
                .secondaries
                .iter()
                .map(|&peer| self.direction(vol.spec.primary, peer))
                .collect();
            for d in list.iter().flatten() {
                dirs[*d].replication_kib += demand[v].0;
            }
            peer_dirs.push(list);
        }
        let resync_dirs: Vec<Option<usize>> = self
            .resyncs
            .iter()
            .map(|r| self.direction(r.spec.source, r.spec.target))
            .collect();
        for (i, d) in resync_dirs.iter().enumerate() {
            if let Some(d) = d {
                dirs[*d].resyncs.push(i);
            }
        }
        let mut resync_grant = vec![0.0; self.resyncs.len()];
        for (d, dir) in dirs.iter_mut().enumerate() {
            let wants: Vec<f64> = dir.resyncs.iter().map(|&i| resync_want[i]).collect();
            let s = share(&self.links[d / 2].spec, dt, dir.replication_kib, &wants);
            for (k, &i) in dir.resyncs.iter().enumerate() {
                resync_grant[i] = s.resync_kib[k];
            }
            dir.accept = s.replication_accept;
            dir.rho = s.rho;
        }
        let app_write: Vec<f64> = demand
            .iter()
            .zip(&peer_dirs)
            .map(|((w, _), ds)| {
                let accept = ds
                    .iter()
                    .flatten()
                    .map(|&d| dirs[d].accept)
                    .fold(1.0, f64::min);
                w * accept
            })
            .collect();

        // 4. Disks serve the sum of what is offered to them.
        let mut offered = vec![Io::default(); self.nodes.len()];
        for (v, vol) in self.volumes.iter().enumerate() {
            let writes = Io::writes(app_write[v], vol.spec.write_io_kib);
            offered[vol.spec.primary.0] = offered[vol.spec.primary.0]
                .plus(writes)
                .plus(Io::reads(demand[v].1, vol.spec.read_io_kib));
            for peer in &vol.spec.secondaries {
                offered[peer.0] = offered[peer.0].plus(writes);
            }
        }
        for (i, r) in self.resyncs.iter().enumerate() {
            let g = resync_grant[i];
            offered[r.spec.source.0] = offered[r.spec.source.0].plus(Io::reads(g, r.spec.io_kib));
            offered[r.spec.target.0] = offered[r.spec.target.0].plus(Io::writes(g, r.spec.io_kib));
        }
        let served: Vec<DiskTick> = self
            .nodes
            .iter_mut()
            .zip(&offered)
            .map(|(n, io)| n.disk.serve(io, dt))
            .collect();

        // 5. What completed, and how long it took.
        let mut done = vec![Io::default(); self.nodes.len()];
        let mut foreign = vec![0.0; self.nodes.len()];
        for (v, vol) in self.volumes.iter_mut().enumerate() {
            let primary = vol.spec.primary.0;
            let f = vol
                .spec
                .secondaries
                .iter()
                .map(|p| served[p.0].accept)
                .fold(served[primary].accept, f64::min);
            let writes = Io::writes(app_write[v] * f, vol.spec.write_io_kib);
            let reads = Io::reads(demand[v].1 * served[primary].accept, vol.spec.read_io_kib);
            done[primary] = done[primary].plus(writes).plus(reads);
            foreign[primary] += writes.kib() + reads.kib();
            for p in &vol.spec.secondaries {
                done[p.0] = done[p.0].plus(writes);
                foreign[p.0] += writes.kib();
            }
            // Protocol C: the slowest of the local write and each peer's.
            let local = served[primary].latency_ms;
            let (mut base, mut mean) = (0.0, local);
            for (p, d) in vol.spec.secondaries.iter().zip(&peer_dirs[v]) {
                let delay = d.map_or(0.0, |d| {
                    write_delay_ms(&self.links[d / 2].spec, vol.spec.write_io_kib, dirs[d].rho)
                });
                let remote = served[p.0].latency_ms;
                if delay + remote > base + mean {
                    (base, mean) = (delay, remote);
                }
            }
            let write_ms = base + mean;
            vol.upper.account(&writes.plus(reads), local, write_ms, dt);
            vol.acc.writes.add(writes.write_ios, base, mean);
            vol.acc.write_kib += writes.write_kib;
            vol.acc.offered_write_kib += demand[v].0;
            vol.acc.read_kib += reads.read_kib;
            vol.acc.waited_ms += writes.write_ios * write_ms + reads.read_ios * local;
        }
        for (i, r) in self.resyncs.iter_mut().enumerate() {
            if r.done_at_tick.is_some() {
                continue;
            }
            let (s, tg) = (r.spec.source.0, r.spec.target.0);
            let kib = resync_grant[i] * served[s].accept.min(served[tg].accept);
            r.backlog_kib = (r.pacer.in_flight_sectors() as f64 / 2.0 - kib).max(0.0);
            r.response_ms = served[s].latency_ms
                + served[tg].latency_ms
                + resync_dirs[i].map_or(0.0, |d| {
                    write_delay_ms(&self.links[d / 2].spec, r.spec.io_kib, dirs[d].rho)
                });
            done[s] = done[s].plus(Io::reads(kib, r.spec.io_kib));
            done[tg] = done[tg].plus(Io::writes(kib, r.spec.io_kib));
            r.left_kib = (r.left_kib - kib).max(0.0);
            r.came_in_sectors += kib * 2.0;
            r.acc.done_kib += kib;
            if r.left_kib <= 1e-6 {
                r.left_kib = 0.0;
                r.done_at_tick = Some(now + 1);
            }
        }

        // 6. Counters.
        for (n, node) in self.nodes.iter_mut().enumerate() {
            let tick = &served[n];
            node.disk.account(&done[n], tick.latency_ms, dt);
            node.foreign_sectors += foreign[n] * 2.0;
            node.acc.rho += tick.rho;
            node.acc.ios += done[n].ios();
            node.acc.waited_ms += done[n].ios() * tick.latency_ms;
            node.acc.read_kib += done[n].read_kib;
            node.acc.write_kib += done[n].write_kib;
        }

        self.tick += 1;
        if self.tick % WINDOW_TICKS == 0 {
            let w = self.close_window();
            self.last_window = Some(w.clone());
            Some(w)
        } else {
            None
        }
    }

    /// Turns the sums of the last [`WINDOW_TICKS`] ticks into a [`Window`].
    fn close_window(&mut self) -> Window {
        let seconds = WINDOW_TICKS as f64 * TICK_S;
        let end_s = self.now_s();
        let mib_s = |kib: f64| kib / 1024.0 / seconds;
        let volumes = self
            .volumes
            .iter_mut()
            .enumerate()
            .map(|(i, v)| {
                let acc = std::mem::take(&mut v.acc);
                VolumeWindow {
                    volume: VolumeId(i),
                    name: v.spec.name.clone(),
                    write_p50_ms: acc.writes.quantile(0.5),
                    write_p99_ms: acc.writes.quantile(0.99),
                    write_mean_ms: acc.writes.mean(),
                    write_mib_s: mib_s(acc.write_kib),
                    offered_write_mib_s: mib_s(acc.offered_write_kib),
                    read_mib_s: mib_s(acc.read_kib),
                    queue_depth: acc.waited_ms / (seconds * 1000.0),
                }
            })
            .collect();
        let nodes = self
            .nodes
            .iter_mut()
            .enumerate()
            .map(|(i, n)| {
                let acc: NodeAcc = std::mem::take(&mut n.acc);
                NodeWindow {
                    node: NodeId(i),
                    name: n.name.clone(),
                    utilisation: acc.rho / WINDOW_TICKS as f64,
                    mean_latency_ms: if acc.ios > 0.0 {
                        acc.waited_ms / acc.ios
                    } else {
                        0.0
                    },
                    queue_depth: acc.waited_ms / (seconds * 1000.0),
                    read_mib_s: mib_s(acc.read_kib),
                    write_mib_s: mib_s(acc.write_kib),
                }
            })
            .collect();
        let resyncs = self
            .resyncs
            .iter_mut()
            .enumerate()
            .map(|(i, r)| {
                let acc: ResyncAcc = std::mem::take(&mut r.acc);
                ResyncWindow {
                    resync: ResyncId(i),
                    rate_kib_s: acc.done_kib / seconds,
                    left_kib: r.left_kib,
                    done_at_s: r.done_at_tick.map(|t| t as f64 * TICK_S),
                    target_throttled_ticks: acc.target_throttled,
                    source_throttled_ticks: acc.source_throttled,
                }
            })
            .collect();
        Window {
            start_s: end_s - seconds,
            end_s,
            volumes,
            nodes,
            resyncs,
        }
    }
}
