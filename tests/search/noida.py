"""An Elasticsearch endpoint for the tests: a real cluster when FAIRNODE_TEST_ES_URL names one,
otherwise the noida-db ES-API emulator (installed with the dev extras), started on a free
loopback port for the duration of a ``with`` block."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ES_URL_ENV = "FAIRNODE_TEST_ES_URL"
START_TIMEOUT_SECONDS = 20.0


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def noida_executable() -> str:
    """The ``noida-db`` script of this environment (next to the interpreter), else on PATH."""
    beside = Path(sys.executable).parent / "noida-db"
    if beside.exists():
        return str(beside)
    found = shutil.which("noida-db")
    if found is None:
        raise RuntimeError(
            f"noida-db is not installed next to {sys.executable} nor on PATH: install the dev "
            f"extras (pip install -e '.[dev]') or set {ES_URL_ENV} to a real cluster"
        )
    return found


def _answers(url: str) -> bool:
    """GET / answers like Elasticsearch (a JSON body with a version)."""
    try:
        with urllib.request.urlopen(url + "/", timeout=1) as resp:
            return "version" in json.loads(resp.read())
    except (OSError, ValueError):
        return False


@contextmanager
def elasticsearch_server(data_dir: Path) -> Iterator[str]:
    """Yield the URL of an Elasticsearch endpoint; the emulator's data lives in ``data_dir``."""
    env_url = os.environ.get(ES_URL_ENV)
    if env_url:
        yield env_url.rstrip("/")
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    # The free port can be taken between our probe and the emulator's bind: try a few.
    for attempt in range(3):
        proc, url = _start(data_dir, last=attempt == 2)
        if proc is not None:
            break
    try:
        yield url
    finally:
        _stop(proc)


def _start(data_dir: Path, *, last: bool) -> tuple[subprocess.Popen[bytes] | None, str]:
    """Start the emulator on a free port and wait until it answers; (None, url) when it exited
    early and ``last`` is false (the caller tries another port), RuntimeError otherwise."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = data_dir / f"noida-db-{port}.log"
    cmd = [
        noida_executable(),
        "start",
        "--only",
        "elasticsearch",
        "--elasticsearch-port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    with log_path.open("wb") as log:
        # Its own session: stopping it (the launcher and the binary) never touches ours.
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not _answers(url):
        exited = proc.poll() is not None
        if exited and not last:
            return None, url
        if exited or time.monotonic() > deadline:
            state = (
                f"exited with status {proc.returncode}"
                if exited
                else f"did not answer GET {url}/ within {START_TIMEOUT_SECONDS:g} s"
            )
            _stop(proc)
            output = log_path.read_text(errors="replace")[-4000:]
            raise RuntimeError(
                f"noida-db (Elasticsearch emulator) {state}.\n"
                f"command: {' '.join(cmd)}\nits output:\n{output}"
            )
        time.sleep(0.1)
    return proc, url


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    """Terminate the emulator (the Python launcher and the binary it runs, its session)."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
