#!/usr/bin/python3
"""The dashboard at scale (issue 15): a 100,000-trial study served by `hpo dashboard` and loaded
in headless Chromium, beside Optuna's own way to see a study from the same run.

    /usr/bin/python3 experiments/bench_dashboard.py [--trials 100000] [--runs 3]
        [--hpo build/hpo] [--study-maker build/experiments/dashboard_study]
        [--out experiments/results/dashboard.txt] [--no-peer]

Ours:
- each API answer of the study page, cold (a fresh server: nothing cached) and warm;
- the study page's first load: a fresh server and a fresh browser profile, from Page.navigate
  (Chrome DevTools Protocol) until the page says every panel is drawn (#hpo-status ready:
  history, leaderboard, parallel coordinates, importance, curves, slice, timeline). Target < 1 s.
- `hpo report` of the study: time and size.
The peer: Optuna 3.1 (python3-optuna, its RDB storage on SQLite in WAL mode) holding the same
100,000 trials; optuna-dashboard is not packaged in Debian, so its figures are Optuna's
visualization module (python3-plotly): load the study, then build the optimization history and
the parallel-coordinates figures and write them as one HTML file, the peer's counterpart of our
first load and of `hpo report`.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket  # python3-websocket


def http_time(url):
    t = time.perf_counter()
    with urllib.request.urlopen(url) as r:
        body = r.read()
    return time.perf_counter() - t, len(body)


def start_dashboard(hpo, db):
    p = subprocess.Popen([hpo, "dashboard", "--db", db, "--bind", "127.0.0.1:0"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    m = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
    if not m:
        p.kill()
        sys.exit("bench_dashboard: hpo dashboard did not start: " + line)
    return p, m.group(1)


class Browser:
    """Headless Chromium driven over the DevTools protocol, with a profile of its own."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="bench-dash-chromium-")
        self.proc = subprocess.Popen(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--remote-debugging-port=0", "--user-data-dir=" + self.profile,
             "--window-size=1400,1000", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        port = None
        while port is None:
            line = self.proc.stderr.readline()
            if not line:
                sys.exit("bench_dashboard: chromium did not start")
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                port = m.group(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as r:
            pages = [t for t in json.load(r) if t["type"] == "page"]
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=60)
        self.next_id = 0
        self.call("Runtime.enable")
        self.call("Page.enable")

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                return msg.get("result", {})

    def status(self):
        r = self.call("Runtime.evaluate", returnByValue=True, expression=(
            "(() => { const e = document.getElementById('hpo-status');"
            " return e ? e.textContent : null; })()"))
        text = r.get("result", {}).get("value")
        try:
            return json.loads(text) if text else None
        except ValueError:
            return None

    def load(self, url, limit=60.0):
        """Seconds from navigation until the page is ready, and its status."""
        t = time.perf_counter()
        self.call("Page.navigate", url=url)
        while time.perf_counter() - t < limit:
            s = self.status()
            if s and s.get("ready") and s.get("route", "").startswith("#/study"):
                return time.perf_counter() - t, s
            time.sleep(0.005)
        sys.exit("bench_dashboard: the page was not ready within %.0f s" % limit)

    def close(self):
        self.ws.close()
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def peer(jsonl, workdir, out):
    """Optuna holding the same trials; its history and parallel-coordinate figures as HTML."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from sqlalchemy import event
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = os.path.join(workdir, "optuna.db")
    storage = optuna.storages.RDBStorage("sqlite:///" + path)

    @event.listens_for(storage.engine, "connect")
    def _wal(conn, _):  # like for like: WAL and synchronous=NORMAL, as hpo's store
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    storage.engine.dispose()

    dists = {"lr": FloatDistribution(1e-4, 1e-1, log=True),
             "batch_size": CategoricalDistribution([32, 64, 128, 256, 512]),
             "width": IntDistribution(16, 512, log=True),
             "dropout": FloatDistribution(0.0, 0.6)}
    states = {"COMPLETED": optuna.trial.TrialState.COMPLETE,
              "PRUNED": optuna.trial.TrialState.PRUNED, "FAILED": optuna.trial.TrialState.FAIL}
    # Optuna's add_trials took 43 ms a trial here (70 minutes for 100,000): the trials go into
    # its tables with SQL instead, the rows add_trials would write; what is timed is Optuna
    # reading and plotting them, as its users do.
    import sqlite3
    t = time.perf_counter()
    optuna.create_study(study_name="big", storage=storage, direction="maximize")
    storage.engine.dispose()
    con = sqlite3.connect(path)
    study_id = con.execute("SELECT study_id FROM studies WHERE study_name = 'big'").fetchone()[0]
    names = {"COMPLETED": "COMPLETE", "PRUNED": "PRUNED", "FAILED": "FAIL"}
    dist_json = {k: optuna.distributions.distribution_to_json(d) for k, d in dists.items()}
    trial_rows, params, values, inter = [], [], [], []
    with open(jsonl) as f:
        for number, line in enumerate(f):
            rec = json.loads(line)
            tid = number + 1
            trial_rows.append((tid, number, study_id, names[rec["state"]],
                               "2027-01-15 08:00:00", "2027-01-15 08:05:00"))
            for k, v in rec["params"].items():
                params.append((tid, k, dists[k].to_internal_repr(v), dist_json[k]))
            if rec["state"] == "COMPLETED":
                values.append((tid, 0, rec["value"], "FINITE"))
            for step in range(1, rec["steps"] + 1):
                inter.append((tid, step, rec["value"], "FINITE"))
    con.executemany("INSERT INTO trials(trial_id, number, study_id, state, datetime_start,"
                    " datetime_complete) VALUES (?,?,?,?,?,?)", trial_rows)
    con.executemany("INSERT INTO trial_params(trial_id, param_name, param_value,"
                    " distribution_json) VALUES (?,?,?,?)", params)
    con.executemany("INSERT INTO trial_values(trial_id, objective, value, value_type)"
                    " VALUES (?,?,?,?)", values)
    con.executemany("INSERT INTO trial_intermediate_values(trial_id, step, intermediate_value,"
                    " intermediate_value_type) VALUES (?,?,?,?)", inter)
    con.commit()
    con.close()
    out["peer_write_s"] = time.perf_counter() - t
    t = time.perf_counter()
    loaded = optuna.load_study(study_name="big", storage=storage)
    out["peer_trials"] = len(loaded.trials)
    out["peer_best"] = loaded.best_value
    history = optuna.visualization.plot_optimization_history(loaded)
    parallel = optuna.visualization.plot_parallel_coordinate(loaded)
    html = os.path.join(workdir, "optuna.html")
    with open(html, "w") as f:
        f.write(history.to_html(include_plotlyjs=True, full_html=True))
        f.write(parallel.to_html(include_plotlyjs=False, full_html=False))
    out["peer_figures_s"] = time.perf_counter() - t
    out["peer_html_bytes"] = os.path.getsize(html)
    out["peer_version"] = optuna.__version__
    import plotly
    out["plotly_version"] = plotly.__version__


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--hpo", default="build/hpo")
    ap.add_argument("--study-maker", default="build/experiments/dashboard_study")
    ap.add_argument("--out", default="experiments/results/dashboard.txt")
    ap.add_argument("--no-peer", action="store_true")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-dash-")
    db, jsonl = os.path.join(work, "big.db"), os.path.join(work, "big.jsonl")
    t = time.perf_counter()
    subprocess.run([a.study_maker, db, "--trials", str(a.trials), "--optuna-json", jsonl],
                   check=True, stdout=subprocess.DEVNULL)
    made = time.perf_counter() - t
    study = "big"
    api = ["studies", f"study?name={study}", f"leaderboard?name={study}",
           f"history?name={study}", f"parallel?name={study}", f"importance?name={study}",
           f"curves?name={study}", f"slice?name={study}", f"timeline?name={study}", "agents"]
    res = {"api": {}}

    server, base = start_dashboard(a.hpo, db)
    for p in api:
        cold, size = http_time(base + "api/" + p)
        warm, _ = http_time(base + "api/" + p)
        res["api"][p.split("?")[0]] = (cold, warm, size)
    server.kill()
    server.wait()

    loads, warm_loads, status = [], [], None
    for _ in range(a.runs):
        server, base = start_dashboard(a.hpo, db)  # nothing cached on either side
        browser = Browser()
        seconds, status = browser.load(base + "#/study/" + study)
        timing = status.get("timing") or {}
        loads.append((seconds, timing.get("first_screen_ms"), timing.get("all_ms")))
        browser.call("Page.navigate", url="about:blank")
        seconds, again = browser.load(base + "#/study/" + study)
        timing = again.get("timing") or {}
        warm_loads.append((seconds, timing.get("first_screen_ms"), timing.get("all_ms")))
        browser.close()
        server.kill()
        server.wait()
    report = os.path.join(work, "report.html")
    t = time.perf_counter()
    subprocess.run([a.hpo, "report", "--db", db, "--study", study, "-o", report], check=True,
                   stdout=subprocess.DEVNULL)
    report_s = time.perf_counter() - t
    if not a.no_peer:
        peer(jsonl, work, res)

    chromium = subprocess.run(["chromium", "--version"], capture_output=True, text=True).stdout
    lines = [
        "hpo dashboard at scale (experiments/bench_dashboard.py), " + time.strftime("%Y-%m-%d"),
        f"machine: {os.cpu_count()} cores; load average before: {' '.join('%.2f' % x for x in os.getloadavg())}",
        f"study: {a.trials} trials (60% completed, 38% pruned, 2% failed; 5 steps each; 8 agents x 4"
        f" slots), written by dashboard_study in {made:.1f} s; database {os.path.getsize(db) / 1e6:.0f} MB",
        f"browser: {chromium.strip()} headless, 1400x1000, a fresh profile per run",
        "",
        "API answers of the study page (fresh server: cold = first request, warm = cached):",
    ]
    for name, (cold, warm, size) in res["api"].items():
        lines.append(f"  {name:<11} cold {cold * 1000:7.1f} ms   warm {warm * 1000:6.1f} ms   {size / 1000:8.1f} kB")
    def fmt(runs):
        return "\n".join(f"  run {i + 1}: first screen drawn {first:.0f} ms, every panel drawn {every:.0f} ms"
                         f" (navigation to ready seen over the protocol: {total:.3f} s)"
                         for i, (total, first, every) in enumerate(runs))
    def median(runs, k):
        return sorted(r[k] for r in runs)[len(runs) // 2]
    lines += [
        "",
        "study page, first load (a fresh server and a fresh browser profile; times from navigation"
        " start, measured by the page: the panels on screen are drawn first, the rest after the paint):",
        fmt(loads),
        f"  median: first screen {median(loads, 1):.0f} ms, every panel {median(loads, 2):.0f} ms (target < 1 s)",
        "the same page again in the same browser (its files cached, the server's answers cached):",
        fmt(warm_loads),
        "drawn: " + json.dumps(status.get("charts")) + f", leaderboard rows {len(status.get('leaderboard', []))}, errors {status.get('errors')}",
        f"hpo report of the study: {report_s:.2f} s, {os.path.getsize(report) / 1e6:.1f} MB (offline, ECharts inlined)",
    ]
    if not a.no_peer:
        lines += [
            "",
            f"peer: Optuna {res['peer_version']} (RDBStorage on SQLite, WAL, synchronous=NORMAL), plotly {res['plotly_version']};"
            " optuna-dashboard is not in Debian",
            f"  the same {res['peer_trials']} trials written into its tables with SQL: {res['peer_write_s']:.1f} s"
            f" (best value {res['peer_best']:.6f})",
            f"  load_study + plot_optimization_history + plot_parallel_coordinate + to_html: {res['peer_figures_s']:.2f} s,"
            f" {res['peer_html_bytes'] / 1e6:.1f} MB (before any browser draws it)",
        ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
