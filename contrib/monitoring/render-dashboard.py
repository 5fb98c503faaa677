#!/usr/bin/env python3
"""Renders drbd-agent-dashboard.json's panels to a PNG without Grafana.

Grafana is not packaged in Debian 12, so this documentation tool draws the
same panels another way: it runs the simulator with the demo scenario, a
drbd-agent following it (node bravo, throttle enabled so that the throttle
panels have data), and a real Prometheus server scraping the agent every
second; after the run it sends every panel's PromQL, exactly as written in
the dashboard (with $node and $resource as "all"), to Prometheus'
query_range API and plots the answers with matplotlib, one subplot per
panel at the dashboard's grid positions.

Usage: render-dashboard.py BIN_DIR OUT.png [SECONDS]
  BIN_DIR holds drbd-agent and drbd-sim (e.g. target/debug).
Needs: prometheus (Debian package), matplotlib (PyPI). Not part of the tests.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
STEP = 2


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, bound=30):
    deadline = time.time() + bound
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {bound} s")


def start(bin_dir, work):
    sim_dir = os.path.join(work, "sim")
    bin_links = os.path.join(work, "bin")
    os.makedirs(sim_dir)
    os.makedirs(bin_links)
    sim = os.path.join(bin_dir, "drbd-sim")
    for tool in ("drbdsetup", "drbdadm"):
        os.symlink(sim, os.path.join(bin_links, tool))
    scenario = os.path.join(ROOT, "crates/drbd-sim/src/scenarios/demo.toml")
    procs = [subprocess.Popen([sim, "serve", "--scenario", scenario, "--dir", sim_dir],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    while not os.path.exists(os.path.join(sim_dir, "sim.sock")):
        time.sleep(0.05)
    agent_port = free_port()
    config = os.path.join(work, "agent.toml")
    with open(config, "w") as f:
        f.write(f"""node-name = "bravo"
[drbd]
drbdsetup = "{bin_links}/drbdsetup"
drbdadm = "{bin_links}/drbdadm"
statistics-poll-interval = "1s"
sysfs-root = "{sim_dir}/bravo/sys"
[api]
listen = ["127.0.0.1:{agent_port}"]
[state]
directory = "{work}/state"
[throttle]
enabled = true
mode = "enforce"
interval = "500ms"
min-rate = "1MiB/s"
max-rate = "30MiB/s"
""")
    env = dict(os.environ, DRBD_SIM_DIR=sim_dir, DRBD_SIM_NODE="bravo")
    env.pop("RUST_LOG", None)
    procs.append(subprocess.Popen([os.path.join(bin_dir, "drbd-agent"), "run", "--config", config],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    wait_http(f"http://127.0.0.1:{agent_port}/metrics")
    prom_port = free_port()
    prom_config = os.path.join(work, "prometheus.yml")
    with open(prom_config, "w") as f:
        f.write(f"""global:
  scrape_interval: 1s
scrape_configs:
  - job_name: drbd-agent
    static_configs:
      - targets: ["127.0.0.1:{agent_port}"]
""")
    procs.append(subprocess.Popen(
        ["prometheus", f"--config.file={prom_config}", f"--storage.tsdb.path={work}/tsdb",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    wait_http(f"http://127.0.0.1:{prom_port}/-/ready")
    return procs, f"http://127.0.0.1:{prom_port}"


def query(prom, target, start, end):
    """The target's series as (labels, [[t, value], ...]): a range query, or
    for targets Grafana sends as instant queries, one value at the end."""
    expr = (target["expr"].replace("$__rate_interval", "1m")
            .replace("$node", ".*").replace("$resource", ".*"))
    if target.get("instant"):
        api, params = "query", {"query": expr, "time": end}
    else:
        api, params = "query_range", {"query": expr, "start": start, "end": end, "step": STEP}
    url = f"{prom}/api/v1/{api}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=30) as answer:
        body = json.load(answer)
    if body.get("status") != "success":
        raise SystemExit(f"query failed: {expr}: {body}")
    return [(r["metric"], r["values"] if "values" in r else [r["value"]])
            for r in body["data"]["result"]]


def legend(fmt, labels):
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt or "") or str(labels)


def scale(unit):
    return {"bytes": (1 / 2**20, "MiB"), "Bps": (1 / 2**20, "MiB/s"), "percentunit": (100, "%"),
            "s": (1, "s"), "reqps": (1, "req/s")}.get(unit, (1, ""))


def draw(ax, panel, series, t0):
    factor, suffix = scale(panel.get("fieldConfig", {}).get("defaults", {}).get("unit"))
    ax.set_title(panel["title"], fontsize=8, loc="left")
    ax.tick_params(labelsize=6)
    kind = panel["type"]
    if not series:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", fontsize=8, color="grey",
                transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    if kind == "state-timeline":
        # One band per series, drawn where the series exists (value 1).
        for i, (name, values) in enumerate(series):
            xs = [float(t) - t0 for t, _ in values]
            ax.scatter(xs, [i] * len(xs), marker="s", s=6, linewidths=0)
        ax.set_yticks(range(len(series)), [name for name, _ in series], fontsize=4.5)
        ax.set_ylim(-0.5, len(series) - 0.5)
        ax.invert_yaxis()
        ax.set_xlim(0, None)
        ax.set_xlabel("seconds", fontsize=6)
    elif kind == "timeseries":
        for name, values in series:
            xs = [float(t) - t0 for t, _ in values]
            ys = [float(v) * factor for _, v in values]
            ax.step(xs, ys, where="post", linewidth=0.9, label=name)
        ax.set_xlabel("seconds", fontsize=6)
        if suffix:
            ax.set_ylabel(suffix, fontsize=6)
        ax.legend(fontsize=4.5, loc="upper left", ncol=2, frameon=False)
    else:
        # bargauge, stat, table: the last value of each series.
        names = [name for name, _ in series]
        last = [float(values[-1][1]) * factor for _, values in series]
        ax.barh(range(len(names)), last, color="#9ccc9c")
        ax.set_yticks([])
        ax.set_ylim(-0.5, len(names) - 0.5)
        ax.invert_yaxis()
        for i, (name, v) in enumerate(zip(names, last)):
            ax.text(0, i, f" {name}: {v:.3g}{suffix}", va="center", fontsize=5.5)
        ax.set_xticks([])


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    bin_dir, out = os.path.abspath(sys.argv[1]), sys.argv[2]
    seconds = int(sys.argv[3]) if len(sys.argv) > 3 else 80
    with open(os.path.join(HERE, "drbd-agent-dashboard.json")) as f:
        dashboard = json.load(f)
    work = tempfile.mkdtemp(prefix="render-dashboard-")
    procs = []
    try:
        procs, prom = start(bin_dir, work)
        t0 = time.time()
        time.sleep(seconds)
        end = time.time()
        panels = [p for p in dashboard["panels"] if p["type"] != "row"]
        bottom = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
        fig = plt.figure(figsize=(16, bottom * 0.27))
        fig.suptitle(f"{dashboard['title']} — drbd-sim demo scenario, agent on bravo, "
                     f"Prometheus queries over {seconds} s (rendered with matplotlib, not Grafana)", fontsize=9)
        for panel in panels:
            g = panel["gridPos"]
            ax = fig.add_axes([g["x"] / 24 + 0.03, 1 - (g["y"] + g["h"]) / bottom + 0.02,
                               g["w"] / 24 - 0.05, g["h"] / bottom - 0.05])
            series = []
            for target in panel["targets"]:
                for labels, values in query(prom, target, t0, end):
                    series.append((legend(target.get("legendFormat"), labels), values))
            draw(ax, panel, series, t0)
        fig.savefig(out, dpi=80)
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
