"""Targets and scorers used only by the benchmarks (loaded through
PLAYGROUND_PLUGIN_MODULES=bench.targets, in the bench process and in every
`run_worker` it starts).

Async callables run on the worker's event loop; sync ones run in sandbox
processes (`datasets_app/runs/isolation.py`), since none of these is
registered with `isolated=False`.
"""

import asyncio
import os
import time

from datasets_app.runs.registry import register_scorer, register_target
from datasets_app.runs.scorers import exact_match


@register_target("callable", "noop", description="Async; returns None at once: measures the engine alone.")
async def noop(input, context):
    return None


@register_target("callable", "sleep-200ms-async", description="Async; awaits 200 ms, like an LLM call.")
async def sleep_200ms_async(input, context):
    await asyncio.sleep(0.2)
    return input


@register_target("callable", "sleep-20ms-async", description="Async; awaits 20 ms.")
async def sleep_20ms_async(input, context):
    await asyncio.sleep(0.02)
    return input


@register_target("callable", "sleep-20ms", description="Sync; sleeps 20 ms (runs in a sandbox process).")
def sleep_20ms(input, context):
    time.sleep(0.02)
    return input


@register_target("callable", "hang-async", description="Async; awaits an hour: only a timeout ends it.")
async def hang_async(input, context):
    await asyncio.sleep(3600)


@register_target("callable", "spin-sync", description="Sync; spins forever (sandbox): only a kill ends it.")
def spin_sync(input, context):
    while True:
        pass


@register_scorer("bench-exact-sandboxed", description="exact-match's own code, registered with default isolation.")
def exact_sandboxed(*, input, output, expected):
    return exact_match(input=input, output=output, expected=expected)


@register_target(
    "callable",
    "spin-sync-niced",
    description="Sync; lowers its sandbox's priority (nice 19), then spins: diagnostic for timeouts-cleanup.",
)
def spin_sync_niced(input, context):
    os.nice(19)
    while True:
        pass
