"""Targets used only by the benchmarks (loaded through PLAYGROUND_PLUGIN_MODULES)."""

import time

from datasets_app.runs.registry import register_target


@register_target("callable", "noop", description="Returns None at once: measures the engine alone.")
def noop(input, context):
    return None


@register_target("callable", "sleep-20ms", description="Sleeps 20 ms: measures concurrency.")
def sleep_20ms(input, context):
    time.sleep(0.02)
    return input
