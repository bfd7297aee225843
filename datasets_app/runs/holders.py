"""Who holds a chunk lease, and whether that process is still alive.

A lease owner is named `host:pid:pid-namespace:name`. A worker on the same
host, in the same PID namespace (containers on one host differ), can look at
that pid: if the process is gone, or is a zombie its parent has not reaped,
its chunks are claimable at once instead of when the lease runs out. A worker
on another host cannot look, and waits for the lease as before.
"""

import os
import socket
from collections.abc import Iterable


def _pid_namespace() -> str:
    """Which PID namespace this process sees (containers on one host differ); "" without /proc."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""


def process_key() -> str:
    """How a lease owner names its process: host, pid and PID namespace."""
    return f"{socket.gethostname()}:{os.getpid()}:{_pid_namespace()}"


def _process_gone(pid: int) -> bool:
    """No such process, or only its zombie (killed, not yet reaped by its parent)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    except (OSError, IndexError):
        return False  # cannot tell: wait for the lease
    return state in (b"Z", b"X")


def dead_local_holders(owners: Iterable[str]) -> list[str]:
    """Lease owners whose process ran on this host, in our PID namespace, and is
    gone (kill -9, the OOM killer): their chunks need not wait for the lease to
    run out. A pid reused since is taken for alive, and the lease decides."""
    host, namespace = socket.gethostname(), _pid_namespace()
    dead = []
    for owner in owners:
        parts = owner.split(":", 3)  # the name may hold colons
        if len(parts) != 4 or not namespace:
            continue
        owner_host, pid, owner_namespace, _ = parts
        if (owner_host, owner_namespace) == (host, namespace) and pid.isdigit() and _process_gone(int(pid)):
            dead.append(owner)
    return dead
