"""The click spool: append-only files the redirect writes and the drainer empties.

Writer (each web process): one file at a time, opened `O_APPEND`, one `os.write` of
one complete line per click. When `os.write` returns, the line is in the kernel:
it survives the web process dying, so the 302 may go out. The writer holds a
shared `flock` on its file for as long as it may write to it.

Reader (the drainer): a file whose lock it can take exclusively has no writer any
more (the process exited, or rotated to a new file), so once drained it can go.
Files are created under a dot-name, locked, then renamed into place, so the
drainer never sees a file before its writer holds the lock.

A line is complete when it ends with a newline; a trailing partial line of a live
file is left for the next pass. A write that comes back short (disk full) leaves a
partial line, so the writer abandons that file and starts a new one: a partial
line is only ever the last bytes of a finished file, where the drainer drops it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

SPOOL_PREFIX = "clicks-"
SPOOL_SUFFIX = ".log"


class SpoolWriteError(OSError):
    """The line is not (entirely) in the spool: the click must not be answered with a 302."""


def spool_host() -> str:
    """This node's spool name: `CLICK_SPOOL_HOST`, else the host name."""
    name = settings.CLICK_SPOOL_HOST or socket.gethostname()
    return re.sub(r"[^A-Za-z0-9.-]", "-", name)[:64] or "host"


class SpoolWriter:
    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._directory: Path | None = None
        self._directory_setting: object = None
        self._written = 0
        # CLICK_SPOOL_ROTATE_BYTES as it was when the file was opened: one settings read a
        # file instead of one a click.
        self._rotate_at = 0
        self._sequence = 0
        self._token = secrets.token_hex(4)

    def append(self, line: bytes) -> None:
        directory = settings.CLICK_SPOOL_DIR
        with self._lock:
            if (
                self._fd is None
                # The setting may be an `environ.Path`, which never equals a pathlib.Path:
                # compare the setting itself.
                or (
                    directory is not self._directory_setting
                    and directory != self._directory_setting
                )
                or self._written >= self._rotate_at
            ):
                self._open(Path(str(directory)))
                self._directory_setting = directory
            fd = self._fd
            assert fd is not None  # noqa: S101 (set by _open or it raised)
            try:
                written = os.write(fd, line)
            except OSError as error:
                self._close()
                raise SpoolWriteError(error.errno, f"click spool write failed: {error}") from error
            if written != len(line):
                self._close()
                raise SpoolWriteError(0, f"click spool short write: {written} of {len(line)}")
            self._written += written

    def close(self) -> None:
        with self._lock:
            self._close()

    def after_fork_in_child(self) -> None:
        # The parent's descriptor (and its lock) stay the parent's business.
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._reset()

    def _open(self, directory: Path) -> None:
        self._close()
        directory.mkdir(parents=True, exist_ok=True)
        self._sequence += 1
        name = (
            f"{SPOOL_PREFIX}{spool_host()}-{os.getpid()}-{self._token}-"
            f"{self._sequence:06d}{SPOOL_SUFFIX}"
        )
        temporary = directory / f".{name}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        fd = os.open(temporary, flags, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            os.rename(temporary, directory / name)
        except OSError:
            os.close(fd)
            raise
        self._fd = fd
        self._directory = directory
        self._written = 0
        self._rotate_at = settings.CLICK_SPOOL_ROTATE_BYTES

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


spool_writer = SpoolWriter()
os.register_at_fork(after_in_child=spool_writer.after_fork_in_child)


# --- reading -------------------------------------------------------------------


@dataclass(frozen=True)
class SpoolChunk:
    lines: list[bytes]
    end_offset: int


def spool_files(*, directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(
        path
        for path in directory.iterdir()
        if path.name.startswith(SPOOL_PREFIX) and path.name.endswith(SPOOL_SUFFIX)
    )


def spool_file_is_finished(*, path: Path) -> bool:
    """True when no writer holds the file any more: nothing will be appended to it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def spool_read(*, path: Path, offset: int, max_bytes: int) -> SpoolChunk:
    """Complete lines from `offset`, at most about `max_bytes` (always at least one line)."""
    with path.open("rb") as file:
        file.seek(offset)
        data = file.read(max_bytes)
        end = data.rfind(b"\n")
        while end == -1 and len(data) == max_bytes:
            # One line longer than max_bytes: keep reading until it ends.
            more = file.read(max_bytes)
            if not more:
                break
            data += more
            end = data.rfind(b"\n")
    if end == -1:
        return SpoolChunk(lines=[], end_offset=offset)
    complete = data[: end + 1]
    return SpoolChunk(lines=complete.splitlines(), end_offset=offset + len(complete))


def spool_stale_temporary_files(*, directory: Path, older_than_seconds: float) -> list[Path]:
    """Dot-files a writer died with between create and rename (they hold no clicks)."""
    if not directory.is_dir():
        return []
    cutoff = time.time() - older_than_seconds
    return [
        path
        for path in directory.iterdir()
        if path.name.startswith(f".{SPOOL_PREFIX}")
        and path.name.endswith(".tmp")
        and path.stat().st_mtime < cutoff
    ]
