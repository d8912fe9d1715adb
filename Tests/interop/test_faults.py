"""Faults under a stream of tasks, every result checked: worker processes killed with SIGKILL
mid-task (50 times in one test, under each acknowledgement policy), the broker restarted, and the
connection to it cut by a TCP proxy the test controls. None is lost, the host never goes down."""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter

import pytest
import redis
from billiard.exceptions import WorkerLostError
from celery import Celery

from helpers import RESULT_TIMEOUT, ack_bookkeeping_is_empty, wait_until
from tcpproxy import TCPProxy

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
    except urllib.error.HTTPError as e:
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


# ------------------------------------------------------------------------------------------------
# The broker restarted, the connection cut


class DurableRedis:
    """A redis-server of this test alone that keeps its data across a restart (append-only file,
    fsync on every write), so a restart loses nothing that Redis acknowledged."""

    def __init__(self, directory):
        self.dir = directory
        self.port = free_port()
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [shutil.which("redis-server"), "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir),
             "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--logfile", str(self.dir / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(host="127.0.0.1", port=self.port)
        wait_until(lambda: self._pings(client), 30, f"redis-server on port {self.port}")
        client.close()

    def _pings(self, client) -> bool:
        try:
            return client.ping()
        except redis.ConnectionError:
            assert self.proc.poll() is None, (self.dir / "redis.log").read_text(errors="replace")
            return False

    def kill(self):
        """SIGKILL, by PID: the crash case (the append-only file has every acknowledged write)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


@pytest.fixture
def durable_redis(tmp_path):
    directory = tmp_path / "durable-redis"
    directory.mkdir()
    server = DurableRedis(directory)
    yield server
    server.kill()


def lease_config(tmp_path, seconds=5):
    path = tmp_path / "fnhost-lease.yml"
    path.write_text(f"broker_transport_options: {{fnhost_lease_timeout: {seconds}}}\n")
    return path


@pytest.mark.all_brokers
def test_a_host_killed_mid_stream_then_restarted_completes_every_task(serve, make_functions, celery_app, tmp_path):
    functions = make_functions()
    cfg = lease_config(tmp_path, 3)  # Redis: kombu's visibility timeout stays at its hour
    first = serve(functions, "-c", "2", "--config", cfg)
    slow = [celery_app.send_task("math.slow", args=[0.5], queue="math.slow") for _ in range(40)]
    adds = [celery_app.send_task("math.add", args=[i, 1], queue="math.add") for i in range(500)]
    wait_until(lambda: sum(r.ready() for r in adds[:200]) >= 50 and sum(r.ready() for r in slow) >= 2, 60,
               "the stream to be under way")
    first.kill()
    assert not all(r.ready() for r in slow + adds), "the stream ended before the kill"

    second = serve(functions, "-c", "2", "--config", cfg)
    for r in slow:
        assert set(r.get(timeout=120)) == {"pid", "start", "end"}
    assert [r.get(timeout=120) for r in adds] == [i + 1 for i in range(500)]
    assert second.proc.poll() is None


def test_a_redis_restart_mid_stream_loses_no_task(serve, make_functions, durable_redis, tmp_path):
    broker_url, backend_url = durable_redis.url(0), durable_redis.url(1)
    producer = Celery("faults", broker=broker_url, backend=backend_url, set_as_current=False)
    host = serve(make_functions(), "-c", "2", "--config", lease_config(tmp_path),
                 "--broker", broker_url, "--backend", backend_url, urls=False)
    results = [producer.send_task("math.add", args=[i, 1], queue="math.add") for i in range(1000)]
    wait_until(lambda: sum(r.ready() for r in results[:200]) >= 50, 60, "the stream to be under way")
    producer.close()

    durable_redis.kill()
    time.sleep(1)  # the host sees the broker gone (not a timing assertion)
    durable_redis.start()

    consumer = Celery("faults", broker=broker_url, backend=backend_url, set_as_current=False)
    try:
        assert [consumer.AsyncResult(r.id).get(timeout=120) for r in results] == [i + 1 for i in range(1000)]
        assert consumer.send_task("math.add", args=[2, 3], queue="math.add").get(timeout=RESULT_TIMEOUT) == 5
    finally:
        consumer.close()
    assert host.proc.poll() is None
    assert "fetching from the broker failed" in host.log, "the host never saw the broker go"
    client = redis.Redis.from_url(broker_url)
    wait_until(lambda: ack_bookkeeping_is_empty(client), 30, "unacked to be empty")
    client.close()


def through(proxy_of, url: str) -> str:
    """`url` with its host:port replaced by a proxy to it (rpc:// is left as it is)."""
    parts = urllib.parse.urlsplit(url)
    if parts.port is None:
        return url
    proxy = proxy_of(parts.hostname, parts.port)
    netloc = parts.netloc.rsplit(":", 1)[0] + f":{proxy.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


@pytest.mark.all_brokers
def test_connections_cut_mid_stream_by_a_proxy_lose_no_task(serve, make_functions, celery_app, transport, tmp_path):
    proxies = []

    def proxy_of(host, port):
        proxies.append(TCPProxy(host, port))
        return proxies[-1]

    try:
        broker_url = through(proxy_of, transport.broker_url)
        backend_url = through(proxy_of, transport.backend_url)
        host = serve(make_functions(), "-c", "2", "--config", lease_config(tmp_path),
                     "--broker", broker_url, "--backend", backend_url, urls=False)
        results = [celery_app.send_task("math.add", args=[i, 1], queue="math.add") for i in range(600)]
        for cut in range(3):
            done = 100 * (cut + 1)
            wait_until(lambda: sum(r.ready() for r in results[:done + 100]) >= done, 120,
                       f"{done} tasks done before cut {cut + 1}")
            for proxy in proxies:
                proxy.cut()
            time.sleep(1)  # refused while cut: the host retries (not a timing assertion)
            for proxy in proxies:
                proxy.resume()
        assert [r.get(timeout=120) for r in results] == [i + 1 for i in range(600)]
        assert celery_app.send_task("math.add", args=[2, 3], queue="math.add").get(timeout=RESULT_TIMEOUT) == 5
        assert host.proc.poll() is None
        assert all(p.connections > 1 for p in proxies), "the host reconnected through every proxy"
        felt = "lost the consuming connection" if transport.is_amqp else "fetching from the broker failed"
        assert felt in host.log, "the host never saw its connection cut"
    finally:
        for proxy in proxies:
            proxy.close()
