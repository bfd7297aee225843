"""The catalogue of targets and scorers a run can use.

Built-ins live in `targets.py` and `scorers.py`. A team adds its own Python
callables either by dotted path in settings (or the same-named environment
variables, as JSON):

    PLAYGROUND_TARGETS = {"agent/support-bot": "myproject.bots.answer"}
    PLAYGROUND_SCORERS = {"polite": "myproject.evals.polite"}

or with the decorators below, in any module listed in the
PLAYGROUND_PLUGIN_MODULES setting (imported when Django starts):

    from datasets_app.runs.registry import register_target, register_scorer

    @register_target("agent", "support-bot", description="Our support agent")
    async def support_bot(input, context):
        return await my_agent.answer(input["question"])

    @register_scorer("polite", description="Reply says please")
    def polite(*, input, output, expected):
        return {"score": float("please" in str(output)), "reason": "looked for 'please'"}

An entry that needs configuration says so with `available`: a callable that
returns None when the entry can be used, else the reason it cannot (what to
set). Pages and the API offer only `available_targets()` / `available_scorers()`,
and starting a run refuses an entry whose `unavailable_reason(...)` is not None:

    @register_target("agent", "support-bot", available=requires_any_setting("SUPPORT_BOT_URL"))
"""

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.utils.module_loading import import_string


@dataclass(frozen=True)
class TargetOutput:
    """What a target may return instead of bare output, to report token usage."""

    output: Any
    usage: dict | None = None
    attributes: dict = field(default_factory=dict)


# None when the entry can be used, else why not ("Set OPENAI_BASE_URL or OPENAI_API_KEY").
Availability = Callable[[], str | None]


def requires_any_setting(*names: str) -> Availability:
    """An `available` check: usable when at least one of the Django settings
    `names` is set (non-empty); read at each call, so a changed setting counts."""
    if not names:
        raise ValueError("name at least one setting")

    def check() -> str | None:
        from django.conf import settings

        if any(getattr(settings, name, None) for name in names):
            return None
        return f"Set {' or '.join(names)}"

    return check


@dataclass(frozen=True)
class Target:
    target_type: str
    target_id: str
    name: str
    description: str
    func: Callable  # func(input, context) -> output | TargetOutput; may be async
    # Sync code runs in a sandbox process that a timeout can kill (see isolation.py);
    # only built-ins that cannot hang or spin opt out.
    isolated: bool = True
    available: Availability | None = None  # None: always usable


@dataclass(frozen=True)
class Scorer:
    scorer_id: str
    name: str
    description: str
    func: Callable  # func(*, input, output, expected) -> float | {"score", "reason"}; may be async
    isolated: bool = True
    available: Availability | None = None  # None: always usable


_targets: dict[tuple[str, str], Target] = {}
_scorers: dict[str, Scorer] = {}
# Bumped on every change, so sandbox processes forked from an older catalogue are replaced.
generation = 0


def _isolated(func: Callable, isolated: bool | None) -> bool:
    """Async callables run on the event loop (they can be cancelled); sync ones
    in a sandbox unless registered as safe with `isolated=False`."""
    if inspect.iscoroutinefunction(func):
        return False
    return True if isolated is None else isolated


def _changed() -> None:
    global generation
    generation += 1


def register_target(
    target_type: str,
    target_id: str,
    *,
    name: str | None = None,
    description: str = "",
    isolated: bool | None = None,
    available: Availability | None = None,
) -> Callable[[Callable], Callable]:
    from ..models import DatasetRun

    if target_type not in DatasetRun.TargetType.values:
        raise ValueError(f"target_type must be one of {tuple(DatasetRun.TargetType.values)}, not {target_type!r}")

    def decorator(func: Callable) -> Callable:
        _targets[(target_type, target_id)] = Target(
            target_type,
            target_id,
            name or target_id,
            description or (func.__doc__ or "").strip(),
            func,
            _isolated(func, isolated),
            available,
        )
        _changed()
        return func

    return decorator


def register_scorer(
    scorer_id: str,
    *,
    name: str | None = None,
    description: str = "",
    isolated: bool | None = None,
    available: Availability | None = None,
) -> Callable[[Callable], Callable]:
    def decorator(func: Callable) -> Callable:
        _scorers[scorer_id] = Scorer(
            scorer_id,
            name or scorer_id,
            description or (func.__doc__ or "").strip(),
            func,
            _isolated(func, isolated),
            available,
        )
        _changed()
        return func

    return decorator


def unregister_target(target_type: str, target_id: str) -> None:
    _targets.pop((target_type, target_id), None)
    _changed()


def unregister_scorer(scorer_id: str) -> None:
    _scorers.pop(scorer_id, None)
    _changed()


def load() -> None:
    """Register the built-ins and the team's plugins; called once from
    `DatasetsAppConfig.ready()`, so every process sees the same catalogue."""
    from django.conf import settings

    importlib.import_module(f"{__package__}.targets")
    importlib.import_module(f"{__package__}.scorers")
    for module in settings.PLAYGROUND_PLUGIN_MODULES:
        importlib.import_module(module)
    for key, path in settings.PLAYGROUND_TARGETS.items():
        target_type, _, target_id = key.partition("/")
        register_target(target_type, target_id)(import_string(path))
    for scorer_id, path in settings.PLAYGROUND_SCORERS.items():
        register_scorer(scorer_id)(import_string(path))


def get_target(target_type: str, target_id: str) -> Target | None:
    return _targets.get((target_type, target_id))


def get_scorer(scorer_id: str) -> Scorer | None:
    return _scorers.get(scorer_id)


def all_targets() -> list[Target]:
    return sorted(_targets.values(), key=lambda t: (t.target_type, t.target_id))


def all_scorers() -> list[Scorer]:
    return sorted(_scorers.values(), key=lambda s: s.scorer_id)


def unavailable_reason(entry: Target | Scorer) -> str | None:
    """None when the target or scorer can be used now, else why not (what to
    set). A check that raises makes the entry unavailable with that error."""
    if entry.available is None:
        return None
    try:
        return entry.available()
    except Exception as exc:  # noqa: BLE001 — a plugin's check may raise anything; it becomes the reason
        return f"Cannot tell whether it is configured: {type(exc).__name__}: {exc}"


def available_targets() -> list[Target]:
    """The targets a run can use now, in `all_targets()` order."""
    return [target for target in all_targets() if unavailable_reason(target) is None]


def available_scorers() -> list[Scorer]:
    """The scorers a run can use now, in `all_scorers()` order."""
    return [scorer for scorer in all_scorers() if unavailable_reason(scorer) is None]
