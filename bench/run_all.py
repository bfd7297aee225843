"""Runs every benchmark scenario, each in a fresh subprocess on a fresh database,
prints one table and writes bench/results/latest.json.

    .venv/bin/python bench/run_all.py            # full run (a few minutes)
    .venv/bin/python bench/run_all.py --quick    # small sizes: a smoke check
    .venv/bin/python bench/run_all.py --only throughput-sqlite-c16 --only scaleout

SQLite scenarios get a temp file (SQLITE_PATH); PostgreSQL scenarios get a
database bench_playground_<pid>_<n> created for them (DATABASE_URL) and dropped
afterwards. PostgreSQL comes from BENCH_PG_URL (default
postgres://postgres@127.0.0.1:5432/postgres, the maintenance database); if it
is unreachable the PostgreSQL scenarios are reported as skipped.
"""

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
RESULTS = ROOT / "bench" / "results"
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
SCENARIO_TIMEOUT = 600  # seconds; a scenario that takes longer is reported as failed
WORKER_CMD = ["manage.py", "run_worker", "--skip-checks", "--interval", "0.1", "--no-startup-delay"]
GROWTH_CONCURRENCY = 8
GROWTH_TOLERANCE = 0.95  # largest/smallest rate at or above this counts as "no slowdown" (5 % for noise)
MASTRA_ITEMS_PER_S = 1000 / 1.44  # DESIGN.md: Mastra 1.71, 1,000 items at concurrency 5 in 1.44 s


@dataclass
class Scenario:
    name: str
    db: str                    # "sqlite" or "postgres"
    kind: str                  # "inprocess" (scenarios.py), "scaleout" (harness-driven workers)
                               # or "growth" (scenarios.py once per size in `full`/`quick`, each fresh)
    func: str                  # function in scenarios.py ("prepare_for_workers" for scale-out)
    full: list[int]
    quick: list[int]
    workers: int = 0           # scale-out only
    note: str = ""
    result: dict = field(default_factory=dict)


SCENARIOS = [
    Scenario("throughput-sqlite-c1", "sqlite", "inprocess", "throughput", [10_000, 1], [1_000, 1]),
    Scenario("throughput-sqlite-c16", "sqlite", "inprocess", "throughput", [10_000, 16], [1_000, 16]),
    Scenario("throughput-pg-c1", "postgres", "inprocess", "throughput", [10_000, 1], [1_000, 1]),
    Scenario("throughput-pg-c16", "postgres", "inprocess", "throughput", [10_000, 16], [1_000, 16]),
    Scenario("mastra-like-sqlite-1000-c5", "sqlite", "inprocess", "throughput", [1_000, 5], [1_000, 5],
             note="like-for-like with Mastra's 1,000 items at concurrency 5"),
    Scenario("growth-sqlite-c8", "sqlite", "growth", "growth", [1_000, 10_000, 50_000], [100, 500, 2_000],
             note="DESIGN.md's 'no slowdown as runs grow': items/s per run size, concurrency 8"),
    Scenario("concurrency-sqlite", "sqlite", "inprocess", "concurrency_efficiency", [500, 50], [100, 50]),
    Scenario("concurrency-pg", "postgres", "inprocess", "concurrency_efficiency", [500, 50], [100, 50]),
    Scenario("scaleout-pg-1w", "postgres", "scaleout", "prepare_for_workers", [10_000], [1_000], workers=1),
    Scenario("scaleout-pg-2w", "postgres", "scaleout", "prepare_for_workers", [10_000], [1_000], workers=2),
    Scenario("memory-sqlite", "sqlite", "inprocess", "memory", [50_000], [5_000]),
    Scenario("memory-pg", "postgres", "inprocess", "memory", [50_000], [5_000]),
]


# ---- databases ----------------------------------------------------------------------


def pg_available() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        import psycopg

        psycopg.connect(PG_URL, connect_timeout=3).close()
        return None
    except Exception as exc:  # noqa: BLE001 — reported as the skip reason
        return f"{type(exc).__name__}: {exc}".strip()[:200]


def pg_url_for(name: str) -> str:
    return urlunparse(urlparse(PG_URL)._replace(path="/" + name))


def pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql)


class FreshDatabase:
    """Environment variables pointing at a database nobody has used before."""

    counter = 0

    def __init__(self, db: str):
        self.db = db
        FreshDatabase.counter += 1
        self.n = FreshDatabase.counter

    def __enter__(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "SQLITE_PATH"}}
        env.update(PLAYGROUND_PLUGIN_MODULES="bench.targets", PLAYGROUND_LOG_LEVEL="WARNING",
                   DJANGO_SETTINGS_MODULE="playground.settings", PYTHONUNBUFFERED="1")
        if self.db == "sqlite":
            self.tmp = tempfile.mkdtemp(prefix="bench-playground-")
            env["SQLITE_PATH"] = os.path.join(self.tmp, "bench.sqlite3")
        else:
            self.name = f"bench_playground_{os.getpid()}_{self.n}"
            pg_admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            pg_admin(f'CREATE DATABASE "{self.name}"')
            env["DATABASE_URL"] = pg_url_for(self.name)
        return env

    def __exit__(self, *exc) -> None:
        if self.db == "sqlite":
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            pg_admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# ---- running one scenario -------------------------------------------------------------


def run_scenario_process(func: str, args: list[int], env: dict) -> dict:
    proc = subprocess.run(
        [PYTHON, "bench/scenarios.py", func, *map(str, args)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=SCENARIO_TIMEOUT,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
    raise RuntimeError(f"{func} exited {proc.returncode} without a RESULT line:\n  " + "\n  ".join(tail))


def run_scaleout(items: int, workers: int, env: dict, deadline: float = SCENARIO_TIMEOUT) -> dict:
    """Create the run (its chunks enqueued), start N workers, time until the run is terminal."""
    import psycopg

    run_id = run_scenario_process("prepare_for_workers", [items], env)["run_id"]
    logs = tempfile.mkdtemp(prefix="bench-workers-")
    procs: list[subprocess.Popen] = []
    conn = psycopg.connect(env["DATABASE_URL"], autocommit=True)
    query = ("SELECT status, succeeded_count, failed_count, started_at, completed_at "
             "FROM datasets_app_datasetrun WHERE id = %s")
    try:
        started = time.perf_counter()
        for i in range(workers):
            log = open(os.path.join(logs, f"worker-{i}.log"), "w")
            procs.append(subprocess.Popen([PYTHON, *WORKER_CMD], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
        while True:
            status, succeeded, failed, run_started, run_completed = conn.execute(query, (run_id,)).fetchone()
            if status in ("completed", "failed", "cancelled"):
                elapsed = time.perf_counter() - started
                break
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(f"a worker exited early (logs in {logs})")
            if time.perf_counter() - started > deadline:
                raise RuntimeError(f"run still {status} after {deadline} s ({succeeded + failed}/{items} written)")
            time.sleep(0.05)
        rows = conn.execute("SELECT count(*) FROM datasets_app_datasetrunresult WHERE run_id = %s", (run_id,)).fetchone()[0]
        by_worker = conn.execute(
            "SELECT lease_owner, count(*) FROM datasets_app_runchunk WHERE run_id = %s GROUP BY 1", (run_id,)
        ).fetchall()
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        conn.close()
    if status != "completed" or rows != items or succeeded != items:
        raise RuntimeError(f"run ended {status} with {rows} rows, succeeded_count {succeeded} of {items} (logs in {logs})")
    shutil.rmtree(logs, ignore_errors=True)
    in_db = (run_completed - run_started).total_seconds() if run_started and run_completed else None
    return {"items": items, "workers": workers, "concurrency": 16, "seconds": elapsed, "items_per_s": items / elapsed,
            "run_started_to_completed_s": in_db, "chunks_per_worker": sorted(n for _, n in by_worker)}


def run_growth(sizes: list[int], db: str) -> dict:
    """The growth scenario: one subprocess per size, each on a fresh database."""
    per_size = {}
    for items in sizes:
        with FreshDatabase(db) as env:
            per_size[str(items)] = run_scenario_process("growth", [items, GROWTH_CONCURRENCY], env)
    first, last = per_size[str(sizes[0])], per_size[str(sizes[-1])]
    result = {"concurrency": GROWTH_CONCURRENCY, "sizes": per_size,
              "ratio_largest_to_smallest": last["items_per_s"] / first["items_per_s"]}
    if len(sizes) > 2:
        result["ratio_largest_to_middle"] = last["items_per_s"] / per_size[str(sizes[-2])]["items_per_s"]
    return result


# ---- table ------------------------------------------------------------------------------


def fmt(value, spec=".2f") -> str:
    return "—" if value is None else format(value, spec)


def describe(s: Scenario, results: dict) -> tuple[str, str, str]:
    """(size, figures, reading against the aim) for one scenario."""
    r = s.result
    if "error" in r:
        return "", "FAILED", r["error"].splitlines()[0][:90]
    if "skipped" in r:
        return "", "skipped", r["skipped"][:90]
    if s.func == "throughput":
        size = f"{r['items']:,} items, c={r['concurrency']}"
        figures = (f"{r['seconds']:.2f} s, {r['items_per_s']:,.0f} items/s; floor {r['floor_seconds']:.2f} s, "
                   f"{r['ratio_to_floor']:.2f}× floor")
        if s.name.startswith("mastra"):
            x = r["items_per_s"] / MASTRA_ITEMS_PER_S
            reading = f"{x:.2f}× Mastra's ≈694 items/s (aim 2×: {'met' if x >= 2 else 'missed'})"
        else:
            reading = f"aim ≤ 3× floor: {'met' if r['ratio_to_floor'] <= 3 else 'missed'}"
        return size, figures, reading
    if s.func == "concurrency_efficiency":
        size = f"{r['items']:,} × 20 ms, c={r['concurrency']}"
        figures = f"{r['seconds']:.3f} s vs ideal {r['ideal_seconds']:.3f} s = {r['ratio_to_ideal']:.2f}×"
        return size, figures, f"aim ≤ 1.5×: {'met' if r['ratio_to_ideal'] <= 1.5 else 'missed'}"
    if s.kind == "scaleout":
        size = f"{r['items']:,} items, c=16, {r['workers']} worker(s)"
        figures = (f"{r['seconds']:.2f} s, {r['items_per_s']:,.0f} items/s "
                   f"(run started→completed {fmt(r['run_started_to_completed_s'])} s)")
        one = results.get("scaleout-pg-1w", {})
        if r["workers"] > 1 and "seconds" in one and one.get("items") == r["items"]:
            reading = f"speed-up vs 1 worker: {one['seconds'] / r['seconds']:.2f}× (chunks per worker {r['chunks_per_worker']})"
        else:
            reading = f"chunks per worker {r['chunks_per_worker']}"
        return size, figures, reading
    if s.kind == "growth":
        sizes = list(r["sizes"].values())
        size = ", ".join(f"{p['items']:,}" for p in sizes) + f" items, c={r['concurrency']}"
        big = sizes[-1]
        figures = ("items/s " + ", ".join(f"{p['items_per_s']:,.0f}" for p in sizes)
                   + " (" + ", ".join(f"{p['seconds']:.2f}" for p in sizes) + " s); "
                   + f"{big['items']:,}: first/last tenth {big['first_tenth_items_per_s']:,.0f}"
                   f"/{big['last_tenth_items_per_s']:,.0f}")
        x = r["ratio_largest_to_smallest"]
        reading = (f"{big['items']:,}/{sizes[0]['items']:,} rate {x:.2f}×"
                   + (f", /{sizes[-2]['items']:,} {r['ratio_largest_to_middle']:.2f}×" if "ratio_largest_to_middle" in r else "")
                   + f" (aim no slowdown, ≥ {GROWTH_TOLERANCE}: {'met' if x >= GROWTH_TOLERANCE else 'missed'})")
        return size, figures, reading
    if s.func == "memory":
        marks = r["rss_at_progress_mb"]
        size = f"{r['items']:,} items, c=8"
        figures = f"RSS MB before {r['rss_before_mb']}; " + " ".join(f"{k} {v}" for k, v in marks.items())
        values = list(marks.values())
        reading = f"peak {r['peak_mb']} MB; 20%→100% growth {values[-1] - values[0]:+.1f} MB"
        return size, figures, reading
    return "", json.dumps(r), ""


def print_table(scenarios: list[Scenario]) -> str:
    results = {s.name: s.result for s in scenarios}
    rows = [("scenario", "db", "size", "figures", "reading")]
    rows += [(s.name, s.db, *describe(s, results)) for s in scenarios]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[j]) if j < 4 else cell for j, cell in enumerate(row)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 20)
    text = "\n".join(lines)
    print(text)
    return text


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke check")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only scenarios whose name equals or starts with NAME (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the scenario names and exit")
    options = parser.parse_args()
    if options.list:
        for s in SCENARIOS:
            print(f"{s.name:28} {s.db:9} {s.func} {s.full} (quick {s.quick})")
        return 0
    chosen = [s for s in SCENARIOS if not options.only or any(s.name == o or s.name.startswith(o) for o in options.only)]
    if not chosen:
        parser.error(f"no scenario matches {options.only}; see --list")

    pg_problem = pg_available() if any(s.db == "postgres" for s in chosen) else None
    report = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": options.quick,
        "machine": {"nproc": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg_at_start": loadavg()},
        "git_commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                     text=True).stdout.strip(),
        "scenarios": {},
    }
    total_started = time.perf_counter()
    for s in chosen:
        args = s.quick if options.quick else s.full
        load_before = loadavg()
        print(f"· {s.name} ({s.db}, {s.func} {' '.join(map(str, args))}) … load {load_before[0]}", flush=True)
        t0 = time.perf_counter()
        if s.db == "postgres" and pg_problem:
            s.result = {"skipped": f"PostgreSQL unreachable at {PG_URL}: {pg_problem}"}
        else:
            try:
                if s.kind == "growth":  # a fresh database per size, made inside
                    s.result = run_growth(args, s.db)
                else:
                    with FreshDatabase(s.db) as env:
                        if s.kind == "scaleout":
                            s.result = run_scaleout(args[0], s.workers, env)
                        else:
                            s.result = run_scenario_process(s.func, args, env)
            except Exception as exc:  # noqa: BLE001 — one failed scenario must not lose the others
                s.result = {"error": f"{type(exc).__name__}: {exc}"}
                print(f"  FAILED: {s.result['error']}", flush=True)
        s.result["wall_seconds_incl_setup"] = round(time.perf_counter() - t0, 2)
        s.result["loadavg_before"] = load_before
        report["scenarios"][s.name] = {"db": s.db, "scenario": s.func, "args": args, **s.result}

    print()
    report["table"] = print_table(chosen)
    report["machine"]["loadavg_at_end"] = loadavg()
    report["total_seconds"] = round(time.perf_counter() - total_started, 1)
    print(f"\n{len(chosen)} scenario(s) in {report['total_seconds']} s on {os.cpu_count()} cores; "
          f"load average at start {report['machine']['loadavg_at_start']}, at end {report['machine']['loadavg_at_end']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {(RESULTS / 'latest.json').relative_to(ROOT)}")
    return 1 if any("error" in s.result for s in chosen) else 0


if __name__ == "__main__":
    sys.exit(main())
