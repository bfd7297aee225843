"""Sandbox processes for sync user code, so that a timeout can really stop it.

A sync target or scorer may hang, spin, or hold the GIL (a catastrophic
regex, a C extension in a loop). Run on a thread, such a call can be neither
interrupted nor stopped from stalling the event loop, the lease heartbeat and
the writer. Here each call runs in a child process forked from the worker;
at its timeout (or on a cancel, or a lost lease) the child is killed with
SIGKILL and a fresh one takes its place later.

The child gets the callable by its catalogue key, not pickled: it is a fork
of the worker, so it holds the same registry (closures included). When the
catalogue changes (`registry.generation`), idle children are replaced.
"""

import asyncio
import ctypes
import multiprocessing
import os
import signal
import warnings
from multiprocessing.connection import Connection
from typing import Any

from django.db import connections

from . import registry
from .errors import RemoteError, is_transient

PR_SET_PDEATHSIG = 1
MAX_IDLE = 64
SANDBOX_NICENESS = 10  # children kept for reuse; more are stopped when they come back


class SandboxDied(Exception):
    """The sandbox process exited in the middle of a call (os._exit, a segfault)."""


def die_with_parent(signum: int) -> None:
    """Ask Linux to send `signum` to this process when its parent dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signum)
    except OSError:
        pass  # not Linux: orphans end when their pipe closes after the current call


def _lookup(kind: str, key: tuple) -> Any:
    found = registry.get_target(*key) if kind == "target" else registry.get_scorer(*key)
    if found is None:
        raise LookupError(f"{kind} {'/'.join(key)} is not registered in the sandbox")
    return found.func


def _serve(conn: Connection) -> None:
    """The child's loop: one call at a time until the parent goes away."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(signal.SIGKILL)  # a spinning call must not outlive a killed worker
    os.nice(SANDBOX_NICENESS)  # spinning user code must not starve the loop that times it out
    # The worker's database connections came along with the fork. Closing them
    # here would end the parent's sessions, so keep them referenced and unused.
    inherited = [c.connection for c in connections.all(initialized_only=True)]
    for c in connections.all(initialized_only=True):
        c.connection = None
    while True:
        try:
            kind, key, args, kwargs = conn.recv()
        except (EOFError, OSError):
            break
        try:
            value = _lookup(kind, key)(*args, **kwargs)
            if asyncio.iscoroutine(value):
                value = asyncio.run(value)
            reply: tuple = ("ok", value)
        except BaseException as exc:  # the user's error (SystemExit included) goes back to its item
            reply = ("error", type(exc).__name__, str(exc), is_transient(exc))
        try:
            conn.send(reply)
        except Exception as exc:  # an output that cannot be pickled
            conn.send(("error", type(exc).__name__, f"output cannot be sent back: {exc}", False))
    del inherited
    os._exit(0)


class Sandbox:
    def __init__(self) -> None:
        parent_end, child_end = multiprocessing.Pipe()
        context = multiprocessing.get_context("fork")
        with warnings.catch_warnings():
            # The child runs only the user's callable; it never touches the
            # locks that the parent's other threads may hold at fork time.
            warnings.simplefilter("ignore", DeprecationWarning)
            self.process = context.Process(target=_serve, args=(child_end,), daemon=True, name="sandbox")
            self.process.start()
        child_end.close()
        self.conn = parent_end
        self.generation = registry.generation

    @property
    def usable(self) -> bool:
        return self.process.is_alive() and self.generation == registry.generation

    async def call(self, kind: str, key: tuple, args: tuple, kwargs: dict) -> Any:
        loop = asyncio.get_running_loop()
        readable = loop.create_future()
        self.conn.send((kind, key, args, kwargs))
        loop.add_reader(self.conn.fileno(), lambda: readable.done() or readable.set_result(None))  # type: ignore[func-returns-value]
        try:
            await readable
        finally:
            loop.remove_reader(self.conn.fileno())
        try:
            reply = self.conn.recv()
        except (EOFError, OSError):
            self.process.join(0.1)
            raise SandboxDied(f"the sandbox process died (exit code {self.process.exitcode})") from None
        if reply[0] == "ok":
            return reply[1]
        _, type_name, message, transient = reply
        raise RemoteError(type_name, message, transient=transient)

    def kill(self) -> None:
        """SIGKILL, without waiting on the event loop for the process to go:
        `reap_dead` collects it later."""
        self.conn.close()
        if self.process.is_alive():
            self.process.kill()
        _dying.append(self.process)


_dying: list = []


def reap_dead() -> None:
    """Collect killed sandboxes that have exited (no zombies), never blocking."""
    for process in list(_dying):
        process.join(0)
        if process.exitcode is not None:
            _dying.remove(process)


class SandboxPool:
    """Idle sandboxes of one worker process; one per call in flight."""

    def __init__(self) -> None:
        self._idle: list[Sandbox] = []
        self._busy = 0  # sandboxes running a call now

    def _take(self) -> Sandbox:
        reap_dead()
        while self._idle:
            sandbox = self._idle.pop()
            if sandbox.usable:
                return sandbox
            sandbox.kill()
        return Sandbox()

    def prewarm(self, count: int) -> None:
        """Fork sandboxes ahead of a run, so that `count` calls at once find one
        ready; those busy now count (they come back when their call ends).
        Each chunk of a run asks again: forking for calls already in flight
        cost a 3,000-item run at concurrency 50 some 300 forks (~4 s)."""
        missing = min(count, MAX_IDLE) - len(self._idle) - self._busy
        fresh = [self._take() for _ in range(max(0, missing))]  # before extending: _take pops idle ones
        self._idle.extend(fresh)

    async def call(self, kind: str, key: tuple, *args: Any, **kwargs: Any) -> Any:
        """Run a registered sync callable in a sandbox. Cancelling the awaiting
        task (a timeout, a cancel, a lost lease) kills the sandbox at once."""
        sandbox = self._take()
        self._busy += 1
        try:
            value = await sandbox.call(kind, key, args, kwargs)
        except (RemoteError, SandboxDied):
            self._give_back(sandbox)
            raise
        except BaseException:
            sandbox.kill()
            raise
        finally:
            self._busy -= 1
        self._give_back(sandbox)
        return value

    def _give_back(self, sandbox: Sandbox) -> None:
        if sandbox.usable and len(self._idle) < MAX_IDLE:
            self._idle.append(sandbox)
        else:
            sandbox.kill()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().kill()
        for process in _dying:
            process.join(1)
        reap_dead()


pool = SandboxPool()
