"""Faults under a stream of tasks, every result checked: worker processes killed with SIGKILL
mid-task (50 times in one test, under each acknowledgement policy), the broker restarted, and the
connection to it cut by a TCP proxy the test controls. None is lost, the host never goes down."""

import json
import os
import re
import signal
import socket
import time
import urllib.error
import urllib.request
from collections import Counter

from billiard.exceptions import WorkerLostError

from helpers import RESULT_TIMEOUT, ack_bookkeeping_is_empty, wait_until

VICTIMS = 50
SLEEPING = re.compile(r"math\.slow: sleeping (\d+\.\d{3}) s in pid (\d+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status
    except (urllib.error.HTTPError) as e:
        return e.code


def parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


class WorkerKiller:
    """Reads the host's debug log for `math.slow: sleeping S s in pid P` (the task has started
    in worker process P) and SIGKILLs P on the runs it is told to: only ever a child of the
    host, never the host itself."""

    def __init__(self, host):
        self.host = host
        self.seen = 0
        self.runs = Counter()  # seconds argument -> runs started
        self.killed = []

    def kill_runs(self, count: int, which_run: int, timeout: float):
        """Kills the worker process of every task's `which_run`-th run, until `count` are killed."""
        deadline = time.monotonic() + timeout
        while len(self.killed) < count:
            assert time.monotonic() < deadline, f"only {len(self.killed)} of {count} worker processes killed\n{self.host.log}"
            self.scan(which_run)
            time.sleep(0.01)

    def scan(self, kill_run: int | None = None):
        """Reads the log lines not read yet, counting runs (and killing the `kill_run`-th)."""
        lines = self.host.stderr.text.splitlines()
        for line in lines[self.seen:]:
            m = SLEEPING.search(line)
            if not m:
                continue
            seconds, pid = m.group(1), int(m.group(2))
            self.runs[seconds] += 1
            if self.runs[seconds] == kill_run and parent_of(pid) == self.host.pid:
                os.kill(pid, signal.SIGKILL)
                self.killed.append((seconds, pid))
        self.seen = len(lines)


def stream(app, n):
    return [app.send_task("math.add", args=[i, 1], queue="math.add") for i in range(n)]


def test_fifty_worker_processes_killed_mid_task_fail_their_tasks_with_worker_lost_and_the_host_serves_on(
        serve, make_functions, celery_app, redis_dbs):
    port = free_port()
    host = serve(make_functions(), "-c", "4", "-l", "debug", "--metrics-port", port)
    victims = [celery_app.send_task("math.slow", args=[60 + i / 1000], queue="math.slow") for i in range(VICTIMS)]
    others = stream(celery_app, 200)

    killer = WorkerKiller(host)
    killer.kill_runs(VICTIMS, which_run=1, timeout=300)

    assert len({pid for _, pid in killer.killed}) == VICTIMS, "each kill is a different worker process"
    for r in victims:
        assert isinstance(r.get(timeout=60, propagate=False), WorkerLostError), (r.id, r.state, r.result)
        assert r.state == "FAILURE"
    assert [r.get(timeout=60) for r in others] == [i + 1 for i in range(200)]
    assert host.proc.poll() is None, "the host went down"
    assert http_status(port, "/healthz") == 200
    assert celery_app.send_task("math.add", args=[2, 3], queue="math.add").get(timeout=RESULT_TIMEOUT) == 5
    wait_until(lambda: ack_bookkeeping_is_empty(redis_dbs.broker), 10, "unacked to be empty")


def test_fifty_worker_processes_killed_mid_task_under_reject_on_worker_lost_are_redelivered_and_succeed(
        serve, make_functions, celery_app, redis_dbs, tmp_path):
    port = free_port()
    config = tmp_path / "fnhost.yml"
    config.write_text("tasks:\n  math.slow: {reject_on_worker_lost: true}\n")
    host = serve(make_functions(), "-c", "4", "-l", "debug", "--metrics-port", port, "--config", config)
    victims = [celery_app.send_task("math.slow", args=[4 + i / 1000], queue="math.slow") for i in range(VICTIMS)]
    others = stream(celery_app, 200)

    killer = WorkerKiller(host)
    killer.kill_runs(VICTIMS, which_run=1, timeout=300)

    for r in victims:
        assert set(r.get(timeout=120)) == {"pid", "start", "end"}, (r.id, r.state, r.result)
    assert [r.get(timeout=60) for r in others] == [i + 1 for i in range(200)]
    killer.scan()  # the rest of the log: count every run
    assert sorted(killer.runs.values()) == [2] * VICTIMS, "each victim ran twice: killed once, then to completion"
    assert host.proc.poll() is None, "the host went down"
    assert http_status(port, "/healthz") == 200
    assert celery_app.send_task("math.add", args=[2, 3], queue="math.add").get(timeout=RESULT_TIMEOUT) == 5
    wait_until(lambda: ack_bookkeeping_is_empty(redis_dbs.broker), 10, "unacked to be empty")
