"""Background processes (Celery workers) yield the CPU to the web.

`os.setpriority` alone does little on Linux: with autogrouping (the default,
`/proc/sys/kernel/sched_autogroup_enabled`), the scheduler first shares the CPU out
equally between sessions, and a nice value only ranks processes within their own
session. Honcho (`make run`), systemd and the bench start every process in a session of
its own, so a niced worker still took as much CPU as the whole web server. The session's
autogroup gets the nice value too (`/proc/self/autogroup`), but only when nothing else
lives in that session: this process and the shell that started it.
"""

from __future__ import annotations

import logging
import os
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
