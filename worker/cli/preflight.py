"""Checks a process makes before it touches the database or the broker, so that what
cannot work is refused at once, with a message saying what to do."""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from worker.errors import ConfigurationError

__all__ = ["DataDirInUse", "PortInUse", "ensure_port_free", "exclusive_data_dir"]

LOCK_FILE = "billsync.lock"


class PortInUse(ConfigurationError):
    """Something already listens where this process would."""


class DataDirInUse(ConfigurationError):
    """Another ``billsync run`` holds the data directory."""


def ensure_port_free(host: str, port: int, setting: str) -> None:
    """Raise PortInUse unless ``host:port`` can be bound now; ``setting`` names the
    option or variable that changes it. Port 0 (any free port) always can."""
    if port == 0:
        return
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    with socket.socket(family, kind, proto) as probe:
        # As the servers themselves bind: a connection closing in TIME_WAIT is no obstacle.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise PortInUse(
                f"cannot listen on {host}:{port}: {exc.strerror} (is another billsync "
                f"running?). Stop what listens there, or choose another with {setting}."
            ) from exc


@contextmanager
def exclusive_data_dir(data_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on DATA_DIR/billsync.lock for as long as the block runs.

    Two processes applying from one embedded database and broker would take each
    other's in-flight messages back at start. The lock is the kernel's (flock), so it
    goes with the process however it ends; the file keeps the holder's PID to name it.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise DataDirInUse(
            f"another billsync run (pid {holder}) is using the data directory "
            f"{data_dir.resolve()}: stop it first, or give this one another BILLSYNC_DATA_DIR."
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays, so no two processes race on it
