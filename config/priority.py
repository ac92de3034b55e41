"""Background processes (Celery workers) yield the CPU to the web.

`os.setpriority` alone does little on Linux: with autogrouping (the default,
`/proc/sys/kernel/sched_autogroup_enabled`), the scheduler first shares the CPU out
equally between sessions, and a nice value only ranks processes within their own
session. Honcho (`make run`), systemd and the bench start every process in a session of
its own, so a niced worker still took as much CPU as the whole web server. The session's
autogroup gets the nice value too (`/proc/self/autogroup`), but only when nothing else
lives in that session: this process and the shell that started it.

The web works the other way round (`process_own_session`): each web worker leaves the
server's session for one of its own, so the scheduler counts it as a share of its own, as
it already counts every PostgreSQL backend (each calls `setsid()`). In one session, the
whole web server weighed as much as the one backend storing the drainer's batch: while that
ran, both web workers shared what it left, and the redirect's p99 with its drain running
was 30-42 ms instead of 11-16 ms (README, "Each web worker a scheduling group of its own").
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import select
import signal
import threading
import time
from pathlib import Path

logger = logging.getLogger(__name__)

PROC = Path("/proc")


def process_lower_priority(niceness: int, *, what: str, session: bool = True) -> None:
    """Run at `niceness` (0-19) unless already nicer, and so does this process's session
    when it is this process's own and `session` is asked for (processes forked later
    inherit both)."""
    target = max(0, min(19, niceness))
    try:
        if target > os.getpriority(os.PRIO_PROCESS, 0):
            os.setpriority(os.PRIO_PROCESS, 0, target)
    except OSError:
        logger.warning("could not set the %s's niceness to %d", what, target, exc_info=True)
    autogroup = PROC / "self" / "autogroup"
    if not session or not autogroup.exists() or not _alone_in_session():
        return
    try:
        # "/autogroup-123 nice 0"
        current = int(autogroup.read_text().split()[-1])
        if target > current:
            autogroup.write_text(str(target))
    except (OSError, ValueError, IndexError):
        logger.warning("could not set the %s's autogroup niceness", what, exc_info=True)


AUTOGROUP_ENABLED = PROC / "sys" / "kernel" / "sched_autogroup_enabled"
# After the SIGTERM sent when the parent is gone: time for a graceful stop before exiting.
ORPHAN_EXIT_SECONDS = 10.0


def process_own_session(*, what: str) -> bool:
    """Move this process into a session (a scheduling group) of its own, when the kernel
    groups by session; True when it moved.

    A process that leaves its parent's session no longer gets the signals sent to that
    session's process group (honcho stops a process with `killpg`), so it watches its
    parent: when the parent is gone, it sends itself SIGTERM, and exits after
    `ORPHAN_EXIT_SECONDS` if that did not stop it. The parent (granian's main process)
    stops its workers itself on SIGTERM.
    """
    try:
        if AUTOGROUP_ENABLED.read_text().strip() != "1":
            return False
    except OSError:
        return False
    if os.getsid(0) == os.getpid():
        return False
    # The parent's pid as recorded at the fork when this is a multiprocessing child (granian's
    # workers): a worker still loading the app when its server was killed would read
    # `getppid()` only after that, get init's pid, and watch that for good.
    started_by = multiprocessing.parent_process()
    parent = started_by.pid if started_by is not None and started_by.pid else os.getppid()
    try:
        os.setsid()
    except OSError:
        logger.warning("could not give the %s a session of its own", what, exc_info=True)
        return False
    threading.Thread(
        target=_stop_when_parent_exits, args=(parent, what), name="parent-watch", daemon=True
    ).start()
    return True


def _stop_when_parent_exits(parent: int, what: str) -> None:
    try:
        # Readable once the parent has exited: no wake-ups until then.
        parent_handle: int | None = os.pidfd_open(parent)
    except OSError:
        parent_handle = None
    if parent_handle is not None and os.getppid() == parent:
        watch = select.poll()
        watch.register(parent_handle, select.POLLIN)
        watch.poll()
    else:
        # No pidfd here (Linux before 5.3), or the parent went before it was opened.
        while os.getppid() == parent:
            time.sleep(1.0)
    logger.warning("the %s's parent process exited: stopping", what)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(ORPHAN_EXIT_SECONDS)
    os._exit(1)


def _stat(pid: int) -> tuple[int, int, int] | None:
    """The parent, the session and the controlling terminal (0: none) of a process."""
    try:
        # The command name may hold spaces and parentheses: the fields follow the last ")".
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[1]), int(fields[3]), int(fields[4])
    except (OSError, IndexError, ValueError):
        return None


def _alone_in_session() -> bool:
    """True when this session has no terminal and every other process in it is an
    ancestor of this one (the shell honcho starts a command with) or a descendant."""
    me, session = os.getpid(), os.getsid(0)
    own = _stat(me)
    if own is None or own[2] != 0:
        return False
    ancestors: set[int] = set()
    parent = os.getppid()
    while parent > 1 and parent not in ancestors:
        ancestors.add(parent)
        found = _stat(parent)
        if found is None:
            break
        parent = found[0]
    parents: dict[int, int] = {}
    members: list[int] = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        found = _stat(int(entry.name))
        if found is None:
            continue
        parents[int(entry.name)] = found[0]
        if found[1] == session:
            members.append(int(entry.name))
    for pid in members:
        if pid == me or pid in ancestors:
            continue
        seen: set[int] = set()
        while pid not in (me, 0, 1) and pid not in seen:
            seen.add(pid)
            pid = parents.get(pid, 0)
        if pid != me:
            return False
    return True
