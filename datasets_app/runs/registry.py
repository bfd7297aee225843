"""The catalogue of targets and scorers a run can use.

Built-ins live in `targets.py` and `scorers.py`. A team adds its own Python
callables either by dotted path in settings (or the same-named environment
variables, as JSON):

    PLAYGROUND_TARGETS = {"agent/support-bot": "myproject.bots.answer"}
    PLAYGROUND_SCORERS = {"polite": "myproject.evals.polite"}

or with the decorators below, in any module listed in the
PLAYGROUND_PLUGIN_MODULES setting (imported when the catalogue is first read):

    from datasets_app.runs.registry import register_target, register_scorer

    @register_target("agent", "support-bot", description="Our support agent")
    async def support_bot(input, context):
        return await my_agent.answer(input["question"])

    @register_scorer("polite", description="Reply says please")
    def polite(*, input, output, expected):
        return {"score": float("please" in str(output)), "reason": "looked for 'please'"}
"""

import importlib
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.utils.module_loading import import_string

TARGET_TYPES = ("agent", "workflow", "scorer", "http", "model", "callable")


@dataclass(frozen=True)
class TargetOutput:
    """What a target may return instead of bare output, to report token usage."""

    output: Any
    usage: dict | None = None
    attributes: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    target_type: str
    target_id: str
    name: str
    description: str
    func: Callable  # func(input, context) -> output | TargetOutput; may be async

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.func)


@dataclass(frozen=True)
class Scorer:
    scorer_id: str
    name: str
    description: str
    func: Callable  # func(*, input, output, expected) -> float | {"score", "reason"}; may be async

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.func)


_targets: dict[tuple[str, str], Target] = {}
_scorers: dict[str, Scorer] = {}
_loaded = False
_load_lock = threading.Lock()


def register_target(target_type: str, target_id: str, *, name: str | None = None, description: str = ""):
    if target_type not in TARGET_TYPES:
        raise ValueError(f"target_type must be one of {TARGET_TYPES}, not {target_type!r}")

    def decorator(func: Callable) -> Callable:
        _targets[(target_type, target_id)] = Target(
            target_type, target_id, name or target_id, description or (func.__doc__ or "").strip(), func
        )
        return func

    return decorator


def register_scorer(scorer_id: str, *, name: str | None = None, description: str = ""):
    def decorator(func: Callable) -> Callable:
        _scorers[scorer_id] = Scorer(scorer_id, name or scorer_id, description or (func.__doc__ or "").strip(), func)
        return func

    return decorator


def unregister_target(target_type: str, target_id: str) -> None:
    _targets.pop((target_type, target_id), None)


def unregister_scorer(scorer_id: str) -> None:
    _scorers.pop(scorer_id, None)


def _ensure_loaded() -> None:
    global _loaded
    if _loaded:
        return
    with _load_lock:
        if _loaded:
            return
        from django.conf import settings

        from . import scorers, targets  # noqa: F401  (registering is their import side effect)

        for module in settings.PLAYGROUND_PLUGIN_MODULES:
            importlib.import_module(module)
        for key, path in settings.PLAYGROUND_TARGETS.items():
            target_type, _, target_id = key.partition("/")
            register_target(target_type, target_id)(import_string(path))
        for scorer_id, path in settings.PLAYGROUND_SCORERS.items():
            register_scorer(scorer_id)(import_string(path))
        _loaded = True


def get_target(target_type: str, target_id: str) -> Target | None:
    _ensure_loaded()
    return _targets.get((target_type, target_id))


def get_scorer(scorer_id: str) -> Scorer | None:
    _ensure_loaded()
    return _scorers.get(scorer_id)


def all_targets() -> list[Target]:
    _ensure_loaded()
    return sorted(_targets.values(), key=lambda t: (t.target_type, t.target_id))


def all_scorers() -> list[Scorer]:
    _ensure_loaded()
    return sorted(_scorers.values(), key=lambda s: s.scorer_id)
