"""Runs every benchmark scenario, each part in a fresh subprocess on a fresh
database, prints one table (figure, aim, verdict, previous figure) and writes
bench/results/latest.json.

    .venv/bin/python bench/run_all.py            # full run (make bench)
    .venv/bin/python bench/run_all.py --quick    # small sizes: a smoke check
    .venv/bin/python bench/run_all.py --only llm-shaped --only kill-recovery-pg

SQLite parts get a temp file (SQLITE_PATH); PostgreSQL parts get a database
bench_playground_<pid>_<n> created for them (DATABASE_URL) and dropped
afterwards. PostgreSQL comes from BENCH_PG_URL (default
postgres://postgres@127.0.0.1:5432/postgres, the maintenance database); if it
is unreachable the PostgreSQL scenarios are reported as skipped.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
RESULTS = ROOT / "bench" / "results"
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
PART_TIMEOUT = 900  # seconds; a part that takes longer is reported as failed
MASTRA_ITEMS_PER_S = 696  # the engine issue's figure for Mastra: 1,000 echo items at concurrency 5
# Environment a scenario must not inherit: it picks the database, and the
# lease, loop-stall and export settings must be the defaults unless a part sets them.
SCRUBBED = {
    "DATABASE_URL",
    "SQLITE_PATH",
    "PLAYGROUND_LEASE_SECONDS",
    "PLAYGROUND_CHUNK_SIZE",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "PLAYGROUND_ITEM_TIMEOUT",
}


@dataclass
class Scenario:
    name: str
    db: str  # "sqlite" or "postgres"
    func: str  # function in bench/scenarios.py
    full: list[list[int]]  # one argument list per part; each part: own subprocess, own database
    quick: list[list[int]]
    previous: str  # the figure before this engine (bench/README.md "Earlier figures")
    describe: Callable[[list[dict]], tuple[str, str, str, str, str]] | None = None  # see readings
    result: dict = field(default_factory=dict)


# ---- readings: (size, headline, details, aim, verdict) per scenario ----------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def read_llm_shaped(parts):
    r = parts[0]
    return (
        f"{r['items']:,} × 200 ms async, c={r['concurrency']}",
        f"{r['ratio']:.2f}× ideal",
        f"first start→last end {r['span_s']:.2f} s, ideal {r['ideal_s']:.1f} s; "
        f"in-process worker returned after {r['worker_wall_s']:.2f} s",
        "≤ 1.1× ideal",
        verdict(r["ratio"] <= 1.1),
    )


def read_sync_concurrency(parts):
    r = parts[0]
    return (
        f"{r['items']:,} × 20 ms sync (sandbox), c={r['concurrency']}",
        f"{r['ratio']:.2f}× ideal; worker start→done {r['worker_start_to_completed_s']:.2f} s",
        f"first start→last end {r['span_s']:.3f} s, ideal {r['ideal_s']:.2f} s; worker start→run completed "
        f"{r['worker_start_to_completed_s']:.3f} s, of which worker start→first item "
        f"{r['worker_start_to_first_item_s']:.3f} s (claim + sandbox prewarm)",
        "≤ 1.3× ideal",
        verdict(r["ratio"] <= 1.3),
    )


def read_throughput(parts):
    r = parts[0]
    return (
        f"{r['items']:,} no-op async, c={r['concurrency']}",
        f"{r['ratio_to_floor']:.2f}× floor; {r['items_per_s']:,.0f} items/s",
        f"run {r['seconds']:.2f} s (in-process worker, start to return), bulk_create floor "
        f"{r['floor_s']:.2f} s; rows' first start→last end {r['rows_span_s']:.2f} s",
        "≤ 2× floor",
        verdict(r["ratio_to_floor"] <= 2),
    )


def read_mastra(parts):
    r = parts[0]
    x = r["items_per_s"] / MASTRA_ITEMS_PER_S
    return (
        f"{r['items']:,} workflow/echo, c={r['concurrency']}",
        f"{r['items_per_s']:,.0f} items/s = {x:.2f}× Mastra; first row {r['to_first_row_s']:.2f} s",
        f"run_start→terminal status seen {r['seconds']:.3f} s (run_start itself {r['run_start_call_s']:.3f} s); "
        f"→ first item started {r['to_first_item_start_s']:.3f} s, → first row written "
        f"{r['to_first_row_s']:.3f} s; rows' first start→last end {r['rows_span_s']:.3f} s; one run_worker, "
        f"idle-polling before the start",
        f"≥ {5 * MASTRA_ITEMS_PER_S:,} items/s; first row ≤ 0.5 s",
        f"{verdict(x >= 5)} / {verdict(r['to_first_row_s'] <= 0.5)}",
    )


def read_growth(parts):
    small, big = parts[0], parts[-1]
    x = big["items_per_s"] / small["items_per_s"]
    return (
        f"{small['items']:,} vs {big['items']:,} no-op, c={big['concurrency']}",
        f"{x:.2f}× ({small['items_per_s']:,.0f} → {big['items_per_s']:,.0f} items/s)",
        f"{small['items']:,}: {small['seconds']:.2f} s; {big['items']:,}: {big['seconds']:.2f} s; inside the "
        f"{big['items']:,}-item run, first/last tenth of results {big['first_tenth_items_per_s']:,.0f}/"
        f"{big['last_tenth_items_per_s']:,.0f} items/s "
        f"({big['last_tenth_items_per_s'] / big['first_tenth_items_per_s']:.2f}×)",
        "≥ 0.95",
        verdict(x >= 0.95),
    )


def _s(value) -> str:
    return "—" if value is None else f"{value:.1f}"


def read_kill_recovery(parts):
    r = parts[0]
    own, anyr = r["killed_chunks_rows_again"], r["any_rows_again"]
    ok = (
        r["lost"] == 0
        and r["duplicated"] == 0
        and r["crashed_failures"] == 0
        and own["max"] is not None
        and own["max"] <= 10
        and r["kills"] == r["kills_wanted"]
        and r["status"] == "completed"
    )
    return (
        f"{r['items']:,} × 20 ms async, c={r['concurrency']}, 2 workers, {r['kills']} kills",
        f"{r['lost']} / {r['duplicated']} / {r['crashed_failures']}; recovery max {_s(own['max'])} s, "
        f"median {_s(own['median'])} s",
        f"lost / duplicated / failed 'crashed'; killed chunks' first new row after each kill: max "
        f"{_s(own['max'])}, median {_s(own['median'])} s ({own['n']} of {r['kills']} kills; any new row: max "
        f"{_s(anyr['max'])}, median {_s(anyr['median'])} s); run {r['status']}, started→completed "
        f"{_s(r['run_seconds'])} s; lease {r['lease_seconds']:g} s; items by crash count "
        f"{r['crash_count_histogram']} (2 = ran alone afterwards); claims per chunk {r['chunk_attempts']}",
        "0 / 0 / 0; ≤ 10 s each",
        verdict(ok),
    )


def read_otlp(parts):
    # Each mode runs twice, in the order 0 1 2 2 1 0, so a drift of the machine's
    # speed during the scenario weighs on every mode alike; walls are summed per mode.
    by_mode: dict[int, list[dict]] = {}
    for part in parts:
        by_mode.setdefault(part["mode"], []).append(part)

    def wall(mode: int) -> float:
        return sum(p["seconds"] for p in by_mode[mode])

    def arrived(mode: int) -> int:
        return min(p["traces_arrived"] for p in by_mode[mode])

    plain, exported = by_mode[0][0], by_mode[1][0]
    rounds = len(by_mode[0])
    x = wall(1) / wall(0)
    ok = arrived(1) == exported["items"] and x <= 1.1
    headline = f"{arrived(1):,}/{exported['items']:,} arrived; {x:.2f}× wall"
    detail = (
        f"{rounds} rounds; run_start→terminal {wall(0) / rounds:.2f} s without export; exporter thread in the worker: "
        f"{wall(1) / rounds:.2f} s, outbox drained {exported['drain_after_run_s']:.2f} s after the run, "
        f"{exported['requests']} requests, {exported['sent_twice']} sent twice, {exported['outbox_left']} left"
    )
    separate = by_mode.get(2)
    if separate and "unsupported" not in separate[0]:
        y = wall(2) / wall(0)
        headline += f" (separate exporter process: {arrived(2):,} arrived, {y:.2f}×)"
        detail += (
            f"; separate `run_worker --exporter` process: {wall(2) / rounds:.2f} s, drained "
            f"{separate[0]['drain_after_run_s']:.2f} s after, {separate[0]['sent_twice']} sent twice, "
            f"{separate[0]['outbox_left']} left"
        )
    elif separate:
        detail += f"; separate exporter process: not measured ({separate[0]['unsupported']})"
    return (f"{plain['items']:,} no-op, c=16, run_worker", headline, detail, "all arrive; ≤ 1.1×", verdict(ok))


def read_timeouts(parts):
    r = parts[0]
    base, last = r["baseline"], r["after"][-1]
    back = (
        last["threads"] <= base["threads"]
        and last["os_children"] <= base["os_children"]
        and last["mp_children"] <= base["mp_children"]
        and last.get("cpu_pct", 0) < 5
    )
    runs = "; ".join(
        f"{x['target']}: {x['timed_out']}/{x['rows']} timed out, first start→last end {x['span_s']:.2f} s"
        for x in r["runs"]
    )
    samples = ", ".join(
        f"+{a['t_s']} s: {a['threads']} threads, {a['os_children']} children"
        + (f", {a['cpu_pct']} % CPU" if "cpu_pct" in a else "")
        for a in r["after"]
    )
    return (
        f"{r['items_each']} hang-async + {r['items_each']} spin-sync, 0.5 s timeout, c={r['concurrency']}",
        f"threads {base['threads']}→{last['threads']}, children {base['os_children']}→{last['os_children']}, "
        f"CPU {last.get('cpu_pct')} % at +3 s; runs took "
        + "/".join(f"{x['span_s']:.1f}" for x in r["runs"])
        + f" s (ideal {r['ideal_each_s']:.1f})",
        f"baseline {base['threads']} threads, {base['os_children']} children; after the worker returned "
        f"({r['worker_wall_s']:.2f} s): {samples}. {runs} (ideal {r['ideal_each_s']:.1f} s each, both runs at once)",
        "baseline within a few s",
        verdict(back) + " (cleanup)",
    )


def read_sandbox(parts):
    none, inline, boxed = parts
    return (
        f"{none['items']:,} workflow/echo, c={none['concurrency']}",
        f"inline {inline['us_per_item'] - none['us_per_item']:+,.0f} µs/item, "
        f"sandbox {boxed['us_per_item'] - none['us_per_item']:+,.0f} µs/item",
        f"wall per item: no scorer {none['us_per_item']:,.0f} µs, exact-match inline "
        f"{inline['us_per_item']:,.0f} µs, same code in a sandbox {boxed['us_per_item']:,.0f} µs "
        f"(sandbox/inline {boxed['us_per_item'] / inline['us_per_item']:.2f}×)",
        "report",
        "—",
    )


SCENARIOS = [
    Scenario("llm-shaped", "sqlite", "llm_shaped", [[5000, 250]], [[1000, 250]], "1.59×", read_llm_shaped),
    Scenario(
        "sync-concurrency-sqlite",
        "sqlite",
        "sync_concurrency",
        [[500, 50]],
        [[100, 50]],
        "1.81× (threads)",
        read_sync_concurrency,
    ),
    Scenario(
        "sync-concurrency-pg",
        "postgres",
        "sync_concurrency",
        [[500, 50]],
        [[100, 50]],
        "1.90× (threads)",
        read_sync_concurrency,
    ),
    Scenario(
        "throughput-sqlite",
        "sqlite",
        "throughput",
        [[10_000, 16]],
        [[1_000, 16]],
        "2.28×; 2,127 items/s",
        read_throughput,
    ),
    Scenario(
        "throughput-pg",
        "postgres",
        "throughput",
        [[10_000, 16]],
        [[1_000, 16]],
        "2.91×; 2,264 items/s",
        read_throughput,
    ),
    Scenario(
        "mastra-like", "sqlite", "mastra_like", [[1_000, 5]], [[1_000, 5]], "2,428 items/s (in-process)", read_mastra
    ),
    Scenario("growth", "sqlite", "growth", [[1_000, 8], [50_000, 8]], [[200, 8], [2_000, 8]], "0.80×", read_growth),
    Scenario(
        "kill-recovery-sqlite", "sqlite", "kill_recovery", [[2_000, 8, 10]], [[600, 8, 2]], "—", read_kill_recovery
    ),
    Scenario("kill-recovery-pg", "postgres", "kill_recovery", [[2_000, 8, 10]], [[600, 8, 2]], "—", read_kill_recovery),
    Scenario(
        "otlp-export",
        "sqlite",
        "otlp_export",
        [[10_000, mode] for mode in (0, 1, 2, 2, 1, 0)],
        [[1_000, mode] for mode in (0, 1, 2, 2, 1, 0)],
        "8,372/10,000; 4× (live SDK export)",
        read_otlp,
    ),
    Scenario("timeouts-cleanup", "sqlite", "timeouts_cleanup", [[200, 50]], [[50, 50]], "—", read_timeouts),
    Scenario(
        "sandbox-cost",
        "sqlite",
        "sandbox_cost",
        [[2_000, 8, 0], [2_000, 8, 1], [2_000, 8, 2]],
        [[300, 8, 0], [300, 8, 1], [300, 8, 2]],
        "—",
        read_sandbox,
    ),
]


# ---- databases ---------------------------------------------------------------------------------


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
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
        env.update(
            PLAYGROUND_PLUGIN_MODULES="bench.targets",
            PLAYGROUND_LOG_LEVEL="WARNING",
            DJANGO_SETTINGS_MODULE="playground.settings",
            PYTHONUNBUFFERED="1",
        )
        if self.db == "sqlite":
            self.tmp = tempfile.mkdtemp(prefix="bench-playground-")
            env["SQLITE_PATH"] = os.path.join(self.tmp, "bench.sqlite3")
        else:
            self.name = f"bench_playground_{os.getpid()}_{self.n}"
            assert not self.name.startswith("test_")
            pg_admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            pg_admin(f'CREATE DATABASE "{self.name}"')
            env["DATABASE_URL"] = pg_url_for(self.name)
        return env

    def __exit__(self, *exc) -> None:
        if self.db == "sqlite":
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            pg_admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# ---- running ------------------------------------------------------------------------------------


def run_part(func: str, args: list[int], db: str) -> dict:
    with FreshDatabase(db) as env:
        proc = subprocess.run(
            [PYTHON, "bench/scenarios.py", func, *map(str, args)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=PART_TIMEOUT,
        )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
    raise RuntimeError(f"{func} {args} exited {proc.returncode} without a RESULT line:\n  " + "\n  ".join(tail))


def table(scenarios: list[Scenario]) -> str:
    """One table (figure, aim, verdict, previous), then each scenario's details."""
    rows = [("scenario", "db", "figure", "aim", "verdict", "previous", "others' CPU")]
    details = []
    for s in scenarios:
        r = s.result
        if "error" in r:
            rows.append((s.name, s.db, "FAILED", "", "FAILED", s.previous, ""))
            details.append(f"{s.name}: {r['error']}")
        elif "skipped" in r:
            rows.append((s.name, s.db, "skipped", "", "skipped", s.previous, ""))
            details.append(f"{s.name}: {r['skipped']}")
        else:
            size, headline, detail, aim, result = s.describe(r["parts"])
            others = r.get("other_cpu_share_during")
            rows.append((s.name, s.db, headline, aim, result, s.previous, "" if others is None else f"{others:.0%}"))
            details.append(f"{s.name} — {size}:\n    {detail}")
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    text = (
        "\n".join(lines) + "\n(others' CPU: share of all cores used during the scenario by processes not "
        "started by the benchmark, PostgreSQL's server included)\n\n" + "\n".join(details)
    )
    print(text)
    return text


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def run_at(rev: str) -> int:
    """Re-run this script on `rev`'s engine: a clean export of the commit with
    this checkout's bench/ copied over it; the results land in this checkout."""
    commit = git("rev-parse", "--short", rev)
    if not commit:
        print(f"unknown revision {rev!r}", file=sys.stderr)
        return 2
    source = Path(tempfile.mkdtemp(prefix="bench-src-"))
    try:
        archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
        shutil.copytree(
            ROOT / "bench",
            source / "bench",
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("results", "__pycache__"),
        )
        argv = [
            a
            for i, a in enumerate(sys.argv[1:])
            if a != "--at" and not a.startswith("--at=") and (i == 0 or sys.argv[i] != "--at")
        ]
        print(f"measuring {commit} (git archive in {source}) with this checkout's bench/", flush=True)
        code = subprocess.call(
            [PYTHON, "bench/run_all.py", *argv], cwd=source, env={**os.environ, "BENCH_GIT_COMMIT": commit}
        )
        if (source / "bench" / "results" / "latest.json").exists():
            RESULTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(source / "bench" / "results" / "latest.json", RESULTS / "latest.json")
        return code
    finally:
        shutil.rmtree(source, ignore_errors=True)


def busy_cpu_seconds() -> float:
    """CPU seconds all processes on the machine have used since boot (/proc/stat)."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """CPU seconds of this process's waited-for descendants (scenarios, their workers, sandboxes)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_busy(window: float = 2.0) -> float:
    """Share of all cores busy over `window` seconds (/proc/stat), while no benchmark runs:
    what other processes on this shared machine are using."""

    def sample():
        with open("/proc/stat") as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    total0, idle0 = sample()
    time.sleep(window)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def wait_for_quiet(limit: float, max_wait: float) -> tuple[float, float]:
    """Wait (up to max_wait s) until other processes use under `limit` of the CPU.
    Returns (busy share last measured, seconds waited)."""
    started = time.perf_counter()
    busy = cpu_busy()
    while busy > limit and time.perf_counter() - started < max_wait:
        print(f"  waiting: other processes keep {busy:.0%} of the CPU busy", flush=True)
        busy = cpu_busy(5.0)
    return busy, time.perf_counter() - started


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke check")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only scenarios whose name equals or starts with NAME (repeatable)",
    )
    parser.add_argument("--list", action="store_true", help="list the scenario names and exit")
    parser.add_argument(
        "--max-wait",
        type=float,
        default=300,
        metavar="S",
        help="before each scenario, wait up to S seconds for other processes to use under 25%% "
        "of the CPU (default 300; 0 = don't wait)",
    )
    parser.add_argument(
        "--at",
        metavar="REV",
        help="measure the engine as committed at REV (git archive into a temp dir, with this "
        "checkout's bench/ on top), not the working tree",
    )
    options = parser.parse_args()
    if options.at:
        return run_at(options.at)
    if options.list:
        for s in SCENARIOS:
            print(f"{s.name:26} {s.db:9} {s.func} {s.full} (quick {s.quick})")
        return 0
    chosen = [
        s for s in SCENARIOS if not options.only or any(s.name == o or s.name.startswith(o) for o in options.only)
    ]
    if not chosen:
        parser.error(f"no scenario matches {options.only}; see --list")

    pg_problem = pg_available() if any(s.db == "postgres" for s in chosen) else None
    report = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": options.quick,
        "machine": {
            "nproc": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_at_start": loadavg(),
        },
        "git_commit": os.environ.get("BENCH_GIT_COMMIT") or git("rev-parse", "--short", "HEAD"),
        # Engine files that differ from that commit (the working tree is measured as it is).
        "engine_changes": (
            "none: git archive of the commit"
            if os.environ.get("BENCH_GIT_COMMIT")
            else git("status", "--porcelain", "--", ".", ":!bench").splitlines()
        ),
        "scenarios": {},
    }
    total_started = time.perf_counter()
    for s in chosen:
        parts = s.quick if options.quick else s.full
        busy, waited = wait_for_quiet(0.25, options.max_wait) if options.max_wait else (None, 0.0)
        load_before = loadavg()
        print(
            f"· {s.name} ({s.db}, {s.func} {' | '.join(' '.join(map(str, p)) for p in parts)}) "
            f"… load {load_before[0]}" + ("" if busy is None else f", CPU busy before {busy:.0%}"),
            flush=True,
        )
        t0, machine0, ours0 = time.perf_counter(), busy_cpu_seconds(), children_cpu_seconds()
        if s.db == "postgres" and pg_problem:
            s.result = {"skipped": f"PostgreSQL unreachable at {PG_URL}: {pg_problem}"}
        else:
            try:
                s.result = {"parts": [run_part(s.func, args, s.db) for args in parts]}
                s.describe(s.result["parts"])  # a reading that fails is a failed scenario
            except Exception as exc:  # noqa: BLE001 — one failed scenario must not lose the others
                s.result = {"error": f"{type(exc).__name__}: {exc}"}
                print(f"  FAILED: {s.result['error']}", flush=True)
        wall = time.perf_counter() - t0
        others = busy_cpu_seconds() - machine0 - (children_cpu_seconds() - ours0)
        s.result["wall_seconds_incl_setup"] = round(wall, 2)
        # CPU used meanwhile by processes that are not ours (PostgreSQL's server counts as not ours),
        # as a share of all cores: the noise on this shared machine.
        s.result["other_cpu_share_during"] = round(max(0.0, others) / (wall * (os.cpu_count() or 1)), 2)
        s.result["loadavg_before"] = load_before
        s.result["other_cpu_busy_before"] = None if busy is None else round(busy, 2)
        s.result["waited_for_quiet_s"] = round(waited, 1)
        report["scenarios"][s.name] = {
            "db": s.db,
            "scenario": s.func,
            "args": parts,
            "previous": s.previous,
            **s.result,
        }

    print()
    report["table"] = table(chosen)
    report["machine"]["loadavg_at_end"] = loadavg()
    report["total_seconds"] = round(time.perf_counter() - total_started, 1)
    dirty = isinstance(report["engine_changes"], list) and report["engine_changes"]
    print(
        f"\ncommit {report['git_commit']}{' + uncommitted engine changes' if dirty else ''}; "
        f"{len(chosen)} scenario(s) in {report['total_seconds']} s on {os.cpu_count()} cores; load average at "
        f"start {report['machine']['loadavg_at_start']}, at end {report['machine']['loadavg_at_end']}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {(RESULTS / 'latest.json').relative_to(ROOT)}")
    return 1 if any("error" in s.result for s in chosen) else 0


if __name__ == "__main__":
    sys.exit(main())
