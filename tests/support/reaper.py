"""The reaper: a watchdog process that ends every service a test process started once that test
process is gone, however it went (a normal exit, an exception, kill -9, a lost terminal).

The test process holds the write end of a pipe that is the reaper's stdin and writes there the
process group of each service it starts (`+PGID`) and stops (`-PGID`), and the folders to delete
at the end (`dir PATH`). When the pipe reaches end-of-file (the test process and everything that
shares its write end have exited), the reaper signals every group still registered, and also every
process whose environment carries this run's marker (`MARKER=token`): a service's own children in
sessions of their own (`tass up` starts its api and worker that way) escape their parent's group
but keep its environment. SIGTERM first, SIGKILL after a grace period, then the folders go.

Run as a script (`python reaper.py TOKEN`); it imports only the standard library."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

MARKER = "TASS_TESTS_REAPER_TOKEN"
GRACE_SECONDS = 3.0


def marked_pids(token: str) -> set[int]:
    """Processes (other than this one) started with `MARKER=token` in their environment."""
    needle = f"{MARKER}={token}".encode()
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue  # gone already, or not ours to read
        if needle in environ.split(b"\0"):
            found.add(int(entry.name))
    return found


def signal_all(groups: set[int], pids: set[int], signum: int) -> bool:
    """Send `signum` to each group and process; whether any of them still existed."""
    alive = False
    for send, target in [(os.killpg, g) for g in groups] + [(os.kill, p) for p in pids]:
        try:
            send(target, signum)
            alive = True
        except (ProcessLookupError, PermissionError):
            pass
    return alive


def reap(token: str, groups: set[int]) -> None:
    """SIGTERM the groups and marked processes, wait up to GRACE_SECONDS, then SIGKILL."""
    if not signal_all(groups, marked_pids(token), signal.SIGTERM):
        return
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.1)
        if not signal_all(groups, marked_pids(token), 0):
            return
    signal_all(groups, marked_pids(token), signal.SIGKILL)


def read_registrations(lines: list[str]) -> tuple[set[int], list[str]]:
    """The process groups still registered and the folders to delete, from the pipe's lines."""
    groups: set[int] = set()
    folders: list[str] = []
    for line in lines:
        if line.startswith("+"):
            groups.add(int(line[1:]))
        elif line.startswith("-"):
            groups.discard(int(line[1:]))
        elif line.startswith("dir "):
            folders.append(line[4:])
    return groups, folders


def main(token: str) -> None:
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # a Ctrl-C or hang-up meant for the tests
    groups, folders = read_registrations(sys.stdin.read().splitlines())
    reap(token, groups)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1])
