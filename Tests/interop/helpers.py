"""Small helpers for the interop suite: a running `fnhost serve`, waiting, and raw Redis views.

Everything here talks to real processes: the fnhost binary, redis-server and Celery's own client.
"""

from __future__ import annotations

import array
import fcntl
import json
import os
import re
import signal
import subprocess
import termios
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

READY_TIMEOUT = 30  # seconds for `fnhost serve` to log "fnhost ready"
RESULT_TIMEOUT = 20  # seconds for AsyncResult.get(); machines are shared and noisy
STOP_TIMEOUT = 30  # seconds between SIGTERM and SIGKILL


def clean_env(extra: dict | None = None) -> dict:
    """The test process' environment without any CELERY_* / FNHOST_* setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "FNHOST_"))}
    env.pop("FNHOST", None)
    env.update(extra or {})
    return env


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    """Polls `predicate` until it returns something truthy, and returns that; fails naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class StreamLog:
    """Collects a child's output stream, line by line, in a thread; tests search it.

    What a test reads (`text`, `search`) holds every line the child wrote before the call: a
    line the child wrote before it stored a task's result is there once the test has the result,
    however late the collecting thread runs. The thread reads the descriptor unbuffered, and a
    read first waits until the bytes waiting in the pipe at that moment (FIONREAD) are taken in;
    it never waits for what is written later."""

    def __init__(self, stream):
        self._lines: list[str] = []
        self._partial = b""
        self._cond = threading.Condition()
        self._fd = stream.fileno()
        self._blocked = False  # the thread waits in os.read with everything read so far in _lines
        self._taken = 0  # bytes read and split into lines
        self._done = False
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream):
        while True:
            with self._cond:
                self._blocked = True
                self._cond.notify_all()
            try:
                data = os.read(self._fd, 65536)
            except OSError:
                data = b""
            with self._cond:
                self._blocked = False
                if not data:
                    if self._partial:
                        self._lines.append(self._partial.decode("utf-8", "replace"))
                    self._done = True
                    self._cond.notify_all()
                    break
                self._taken += len(data)
                *complete, self._partial = (self._partial + data).split(b"\n")
                self._lines.extend(raw.decode("utf-8", "replace") for raw in complete)
                self._cond.notify_all()
        stream.close()

    def _settle(self, timeout: float = 5.0):
        """Waits (caller holds _cond) until every byte the child wrote so far is in _lines."""
        deadline = time.monotonic() + timeout
        # First, until what the thread has read is split into lines (it is back in os.read)...
        while not self._done and not self._blocked:
            if not self._cond.wait(max(0.0, deadline - time.monotonic())):
                return
        if self._done:
            return
        # ...then until the bytes waiting in the pipe now are read too.
        pending = array.array("i", [0])
        try:
            fcntl.ioctl(self._fd, termios.FIONREAD, pending, True)
        except OSError:
            return
        target = self._taken + pending[0]
        while not self._done and self._taken < target:
            if not self._cond.wait(max(0.0, deadline - time.monotonic())):
                return

    @property
    def text(self) -> str:
        with self._cond:
            self._settle()
            return "\n".join(self._lines)

    def search(self, pattern: str) -> re.Match | None:
        """The first line matching the regex `pattern`, or None."""
        regex = re.compile(pattern)
        with self._cond:
            self._settle()
            for line in self._lines:
                m = regex.search(line)
                if m:
                    return m
        return None

    def wait_for(self, pattern: str, timeout: float) -> re.Match | None:
        """The first line matching the regex `pattern`, waiting up to `timeout` s for it."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self._lines[seen:]:
                    m = regex.search(line)
                    if m:
                        return m
                seen = len(self._lines)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)


class Host:
    """One `fnhost serve` process, started in its own process group, stopped by its PID."""

    def __init__(self, fnhost: str, functions: Path, args=(), env: dict | None = None):
        self.argv = [fnhost, "serve", "--functions", str(functions), *map(str, args)]
        if "-l" not in self.argv and "--loglevel" not in self.argv:
            self.argv += ["-l", "info"]
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=clean_env(env),
            start_new_session=True,  # its worker processes share this group: see kill()
        )
        self.pid = self.proc.pid
        self.stderr = StreamLog(self.proc.stderr)
        self.stdout = StreamLog(self.proc.stdout)

    @property
    def log(self) -> str:
        """Everything the host wrote so far (stderr, then stdout if any), for failure messages."""
        out = self.stdout.text
        return self.stderr.text + (f"\n--- stdout ---\n{out}" if out else "")

    def describe(self) -> str:
        return f"$ {' '.join(self.argv)}\n(exit status {self.proc.poll()})\n{self.log}"

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> "Host":
        if self.stderr.wait_for(r"fnhost ready", timeout) is None:
            raise AssertionError(f"fnhost serve did not log 'fnhost ready' within {timeout} s:\n{self.describe()}")
        return self

    def wait_for_log(self, pattern: str, timeout: float = READY_TIMEOUT) -> re.Match:
        """The first stderr line matching the regex `pattern` (waits for it)."""
        m = self.stderr.wait_for(pattern, timeout)
        if m is None:
            raise AssertionError(f"no log line matching {pattern!r} within {timeout} s:\n{self.describe()}")
        return m

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then the exit status; SIGKILL (and a failure) if it does not exit in time."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"fnhost serve did not exit within {timeout} s of SIGTERM:\n{self.describe()}")

    def kill(self):
        """SIGKILL the host, then whatever is left of its process group (its worker processes):
        the machine-loss case. Only the group this object created is signalled."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait()
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self):
        """Teardown: SIGTERM, SIGKILL after a timeout. Asserts nothing about the exit status."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()


# ------------------------------------------------------------------------------------------------
# Raw Redis views (kombu's layout, see celery-protocol.md section 2)


def unacked_entries(broker) -> dict[str, list]:
    """delivery_tag -> [envelope, exchange, routing_key] from the `unacked` hash."""
    return {tag.decode(): json.loads(value) for tag, value in broker.hgetall("unacked").items()}


def unacked_task_ids(broker) -> set[str]:
    return {entry[0]["headers"].get("id") for entry in unacked_entries(broker).values()}


def ack_bookkeeping_is_empty(broker) -> bool:
    return broker.hlen("unacked") == 0 and broker.zcard("unacked_index") == 0


def queued_task_ids(broker, queue: str) -> list[str]:
    return [json.loads(raw)["headers"]["id"] for raw in broker.lrange(queue, 0, -1)]


def resident_kb(pid: int) -> int:
    """A process's resident memory (VmRSS), in KB."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def task_meta(backend, task_id: str) -> dict | None:
    """The raw `celery-task-meta-<id>` document, or None when there is no such key."""
    raw = backend.get(f"celery-task-meta-{task_id}")
    return None if raw is None else json.loads(raw)


def park_envelope(app, broker, name: str, args=(), kwargs=None) -> dict:
    """A task envelope exactly as Celery's producer writes it (sent to a queue nobody consumes,
    then taken back out), for tests that alter it and LPUSH it raw."""
    parking = "interop.parking"
    app.send_task(name, args=list(args), kwargs=kwargs or {}, queue=parking)
    raw = broker.rpop(parking)
    assert raw is not None, "the Celery producer did not write to the parking queue"
    return json.loads(raw)
