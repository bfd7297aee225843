"""Targets for the worker-process tests, loaded by the workers through
PLAYGROUND_PLUGIN_MODULES (a child process cannot see a test's closures)."""

import asyncio
import os
import time

from datasets_app.runs.registry import register_target


@register_target("callable", "test-poison", description="Kills its worker process on the input 'poison'.")
async def poison(input, context):
    if input == "poison":
        os._exit(1)
    await asyncio.sleep(0.05)
    return input


@register_target("callable", "test-loop-blocker", description="Blocks the event loop on the input 'block'.")
async def loop_blocker(input, context):
    if input == "block":
        time.sleep(120)
    await asyncio.sleep(0.05)
    return input


@register_target("callable", "test-slow", description="Takes 50 ms, cooperatively.")
async def slow(input, context):
    await asyncio.sleep(0.05)
    return input
