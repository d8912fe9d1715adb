"""Observability against real peers: /metrics scraped and parsed with prometheus_client's own
text parser, /healthz and /readyz, Celery events captured by a real `app.events.Receiver`, and
remote control driven by a real Celery app (`app.control.inspect()`, `revoke`, ...), all on a
private redis-server.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
from billiard.exceptions import TimeLimitExceeded
from amqp.exceptions import NotFound, ResourceLocked
from prometheus_client.parser import text_string_to_metric_families

from helpers import RESULT_TIMEOUT, wait_until

NODE = "obs@interop"
CONTROL_TIMEOUT = 3  # seconds a broadcast waits for replies; machines are shared and noisy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=15) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def scrape(port: int) -> list:
    """Every sample of /metrics, parsed by prometheus_client's parser (which rejects bad syntax)."""
    status, text = http_get(port, "/metrics")
    assert status == 200, text
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(samples, metric: str, **labels):
    """The value of the one sample named `metric` whose labels include `labels`, or None."""
    found = [s.value for s in samples if s.name == metric and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) <= 1, f"{metric}{labels} matches {len(found)} samples"
    return found[0] if found else None


def metric_is(port, metric, expected, **labels):
    return lambda: value(scrape(port), metric, **labels) == expected


@pytest.fixture
def metrics_host(serve, make_functions):
    """A host with --metrics-port: (host, port)."""

    def start(*args):
        port = free_port()
        host = serve(make_functions(), "-n", NODE, "--metrics-port", port, "--grace-period", "2", *args)
        return host, port

    return start


# ------------------------------------------------------------------------------------------------
# /metrics


@pytest.mark.all_brokers(["redis", "amqp+rpc"])
def test_metrics_count_tasks_with_celery_exporter_names_and_labels(metrics_host, celery_app):
    host, port = metrics_host("-c", "2")
    for _ in range(2):
        assert celery_app.send_task("math.add", args=[2, 3], queue="math.add").get(timeout=RESULT_TIMEOUT) == 5
    with pytest.raises(ZeroDivisionError):
        celery_app.send_task("math.div", args=[1, 0], queue="math.div").get(timeout=RESULT_TIMEOUT)
    celery_app.send_task("no.such.task", args=[], queue="math.add")

    add = dict(name="math.add", hostname=NODE, queue_name="math.add")
    div = dict(name="math.div", hostname=NODE, queue_name="math.div")
    wait_until(metric_is(port, "fnhost_dead_letter_queue_length", 1.0), RESULT_TIMEOUT, "the unknown task in the DLQ gauge")
    samples = scrape(port)
    assert value(samples, "celery_task_received_total", **add) == 2
    assert value(samples, "celery_task_started_total", **add) == 2
    assert value(samples, "celery_task_succeeded_total", **add) == 2
    assert value(samples, "celery_task_runtime_seconds_count", **add) == 2
    assert value(samples, "celery_task_runtime_seconds_bucket", le="+Inf", **add) == 2
    assert value(samples, "celery_task_failed_total", exception="ZeroDivisionError", **div) == 1
    assert value(samples, "celery_task_succeeded_total", **div) is None
    assert value(samples, "celery_task_rejected_total", name="no.such.task", hostname=NODE, queue_name="math.add") == 1
    assert value(samples, "fnhost_messages_refused_total", hostname=NODE, queue_name="math.add") == 1
    assert value(samples, "celery_worker_up", hostname=NODE) == 1
    assert value(samples, "celery_worker_tasks_active", hostname=NODE) == 0
    assert value(samples, "celery_queue_length", queue_name="math.add") == 0
    assert value(samples, "fnhost_functions_loaded", hostname=NODE) == 9  # libmath.so 5, libtext.so 4
    assert value(samples, "fnhost_plugin_loads_total", hostname=NODE, result="loaded") == 2
    assert value(samples, "fnhost_broker_connected", hostname=NODE) == 1
    assert value(samples, "fnhost_delayed_store_length") == 0
    processes = sum(s.value for s in samples if s.name == "fnhost_worker_processes")
    assert 1 <= processes <= 2
    names = {s.name for s in samples}
    for declared in ("fnhost_broker_reconnects_total", "fnhost_plugin_reload_failures_total", "fnhost_consumer_seconds_since_progress"):
        assert declared in names


def test_queue_length_counts_the_backlog_and_a_busy_host_stays_live(metrics_host, celery_app, redis_dbs):
    host, port = metrics_host("-c", "1", "--prefetch-multiplier", "1")
    first = celery_app.send_task("math.slow", args=[60], queue="math.slow")
    wait_until(lambda: redis_dbs.broker.llen("math.slow") == 0 and value(scrape(port), "celery_worker_tasks_active", hostname=NODE) == 1,
               RESULT_TIMEOUT, "the slow task running")
    for _ in range(3):
        celery_app.send_task("math.slow", args=[0], queue="math.slow")
    # One slot, prefetch 1: the host holds the running task only, three wait in the list.
    wait_until(metric_is(port, "celery_queue_length", 3.0, queue_name="math.slow"), RESULT_TIMEOUT, "a backlog of 3")
    assert http_get(port, "/healthz") == (200, "ok\n")
    assert http_get(port, "/readyz") == (200, "ok\n")
    replies = celery_app.control.revoke(first.id, terminate=True, signal="SIGKILL", reply=True, timeout=CONTROL_TIMEOUT, limit=1)
    assert replies == [{NODE: {"ok": f"terminate: {first.id}"}}]
    wait_until(metric_is(port, "celery_queue_length", 0.0, queue_name="math.slow"), RESULT_TIMEOUT, "the backlog drained")
    samples = scrape(port)
    assert value(samples, "celery_task_revoked_total", name="math.slow", hostname=NODE, queue_name="math.slow") == 1
    assert value(samples, "fnhost_worker_process_kills_total", hostname=NODE, reason="terminate") == 1


# ------------------------------------------------------------------------------------------------
# /healthz and /readyz


@pytest.mark.all_brokers(["redis", "amqp+rpc"])
def test_healthz_and_readyz_pass_on_a_consuming_host(metrics_host):
    host, port = metrics_host()
    assert http_get(port, "/healthz") == (200, "ok\n")
    assert http_get(port, "/readyz") == (200, "ok\n")
    assert http_get(port, "/nope")[0] == 404


def test_readyz_fails_and_healthz_passes_while_the_broker_is_unreachable(serve, make_functions):
    port, dead = free_port(), free_port()
    host = serve(make_functions(), "--metrics-port", port, urls=False, ready=False,
                 env={"CELERY_BROKER_URL": f"redis://127.0.0.1:{dead}/0"})
    host.wait_for_log(r"metrics on http://")
    host.wait_for_log(r"cannot reach the broker")
    assert http_get(port, "/readyz") == (503, "no broker connection\n")
    assert http_get(port, "/healthz") == (200, "ok\n")
    assert host.terminate() == 0


def test_a_taken_metrics_port_is_a_clear_error(serve, make_functions):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        host = serve(make_functions(), "--metrics-port", taken.getsockname()[1], ready=False)
        assert host.proc.wait(30) != 0
    assert "cannot listen on 0.0.0.0" in host.log


# ------------------------------------------------------------------------------------------------
# Remote control


def test_inspect_answers_in_celerys_shapes(serve, make_functions, celery_app, redis_server, redis_dbs):
    # fnhost connects as an ACL user with a password: `conf` and the log must not show it.
    admin = redis_server.client(0)
    admin.execute_command("ACL", "SETUSER", "obs", "on", ">s3cret-pw", "~*", "&*", "+@all")
    secret_url = redis_dbs.broker_url.replace("redis://", "redis://obs:s3cret-pw@")
    host = serve(make_functions(), "-n", NODE, "-c", "1", "--prefetch-multiplier", "2", "--grace-period", "2", urls=False,
                 env={"CELERY_BROKER_URL": secret_url, "CELERY_RESULT_BACKEND": redis_dbs.backend_url})
    assert celery_app.send_task("math.add", args=[1, 2], queue="math.add").get(timeout=RESULT_TIMEOUT) == 3
    slow = celery_app.send_task("math.slow", args=[60], queue="math.slow")
    waiting = celery_app.send_task("math.slow", args=[0], queue="math.slow")
    inspect = celery_app.control.inspect(timeout=CONTROL_TIMEOUT, limit=1)

    assert inspect.ping() == {NODE: {"ok": "pong"}}
    assert inspect.registered() == {NODE: ["math.add", "math.div", "math.mul", "math.slow", "math.xsum", "text.echo_context",
                                           "text.require_nonempty", "text.upper", "text.wordcount"]}
    active = wait_until(lambda: (inspect.active() or {}).get(NODE), RESULT_TIMEOUT, "the slow task in inspect.active()")
    [info] = active
    assert info["id"] == slow.id and info["name"] == "math.slow" and info["args"] == [60] and info["kwargs"] == {}
    assert info["hostname"] == NODE and info["acknowledged"] is True and isinstance(info["time_start"], float)
    assert info["delivery_info"]["routing_key"] == "math.slow"
    reserved = wait_until(lambda: (inspect.reserved() or {}).get(NODE), RESULT_TIMEOUT, "the second task in inspect.reserved()")
    assert [r["id"] for r in reserved] == [waiting.id]

    stats = inspect.stats()[NODE]
    assert stats["total"] == {"math.add": 1}
    assert info["worker_pid"] in stats["pool"]["processes"]
    assert stats["pool"]["max-concurrency"] == 1 and stats["prefetch_count"] == 2
    assert stats["broker"]["transport"] == "redis" and stats["broker"]["port"] == redis_server.port
    assert {"pid", "clock", "uptime", "rusage"} <= stats.keys()

    assert inspect.query_task(slow.id, waiting.id) == {NODE: {slow.id: ["active", info], waiting.id: ["reserved", reserved[0]]}}
    queues = inspect.active_queues()[NODE]
    assert {"math.add", "math.slow", "text.upper"} <= {q["name"] for q in queues}
    assert all(q["exchange"]["type"] == "direct" and q["routing_key"] == q["name"] for q in queues)
    conf = inspect.conf()[NODE]
    assert conf["worker_concurrency"] == 1 and "obs" in conf["broker_url"]
    assert conf["broker_transport_options"] == {"visibility_timeout": 3600, "fnhost_lease_timeout": 30}
    assert "s3cret-pw" not in json.dumps(conf)
    clock = celery_app.control.broadcast("clock", reply=True, timeout=CONTROL_TIMEOUT, limit=1)
    assert isinstance(clock[0][NODE]["clock"], int)

    assert inspect.revoked() == {NODE: []}
    assert celery_app.control.revoke(waiting.id, reply=True, timeout=CONTROL_TIMEOUT, limit=1) == [
        {NODE: {"ok": f"tasks {{'{waiting.id}'}} flagged as revoked"}}]
    assert inspect.revoked() == {NODE: [waiting.id]}
    # A revoked task that was reserved is settled at once, REVOKED, without running.
    wait_until(lambda: waiting.state == "REVOKED", RESULT_TIMEOUT, "the reserved task REVOKED")
    assert inspect.reserved() == {NODE: []}
    assert "s3cret-pw" not in host.log


@pytest.mark.all_brokers(["redis", "amqp+rpc"])
def test_a_revoked_id_never_runs(serve, make_functions, celery_app):
    host = serve(make_functions(), "-n", NODE)
    task_id = "revoked-before-it-was-sent"
    assert celery_app.control.revoke(task_id, reply=True, timeout=CONTROL_TIMEOUT, limit=1) == [
        {NODE: {"ok": f"tasks {{'{task_id}'}} flagged as revoked"}}]
    result = celery_app.send_task("math.add", args=[1, 1], queue="math.add", task_id=task_id)
    wait_until(lambda: result.state == "REVOKED", RESULT_TIMEOUT, "the task REVOKED")
    assert celery_app.send_task("math.add", args=[1, 1], queue="math.add").get(timeout=RESULT_TIMEOUT) == 2
    host.wait_for_log(rf"math\.add\[{task_id}\] was revoked before it ran")


@pytest.mark.all_brokers(["redis", "amqp+rpc"])
def test_control_commands_change_the_running_host(serve, make_functions, celery_app):
    host = serve(make_functions(), "-n", NODE, "-c", "2")
    control = celery_app.control

    def one(replies):
        assert len(replies) == 1, replies
        return replies[0][NODE]

    assert one(control.rate_limit("no.such.task", "1/s", reply=True, timeout=CONTROL_TIMEOUT, limit=1)) == {"error": "unknown task"}
    assert one(control.rate_limit("math.add", "100/s", reply=True, timeout=CONTROL_TIMEOUT, limit=1)) == {"ok": "new rate limit set successfully"}
    assert one(control.time_limit("math.slow", hard=1, reply=True, timeout=CONTROL_TIMEOUT, limit=1)) == {"ok": "time limits set successfully"}
    with pytest.raises(TimeLimitExceeded):
        celery_app.send_task("math.slow", args=[30], queue="math.slow").get(timeout=RESULT_TIMEOUT)

    assert one(control.add_consumer("extra.queue", reply=True, timeout=CONTROL_TIMEOUT, limit=1)) == {"ok": "add consumer extra.queue"}
    assert celery_app.send_task("math.add", args=[4, 4], queue="extra.queue").get(timeout=RESULT_TIMEOUT) == 8
    assert "extra.queue" in {q["name"] for q in celery_app.control.inspect(timeout=CONTROL_TIMEOUT, limit=1).active_queues()[NODE]}
    assert one(control.cancel_consumer("extra.queue", reply=True, timeout=CONTROL_TIMEOUT, limit=1)) == {"ok": "no longer consuming from extra.queue"}
    assert "extra.queue" not in {q["name"] for q in celery_app.control.inspect(timeout=CONTROL_TIMEOUT, limit=1).active_queues()[NODE]}

    assert one(control.pool_grow(2, reply=True, timeout=CONTROL_TIMEOUT, limit=1)) == {"ok": "pool will grow"}
    assert celery_app.control.inspect(timeout=CONTROL_TIMEOUT, limit=1).stats()[NODE]["pool"]["max-concurrency"] == 4
    assert one(control.pool_shrink(1, reply=True, timeout=CONTROL_TIMEOUT, limit=1)) == {"ok": "pool will shrink"}
    assert one(control.autoscale(5, 1, reply=True, timeout=CONTROL_TIMEOUT, limit=1)) == {"ok": "autoscale now max=5 min=1"}
    assert celery_app.control.inspect(timeout=CONTROL_TIMEOUT, limit=1).stats()[NODE]["pool"]["max-concurrency"] == 5
    assert one(control.broadcast("no_such_command", reply=True, timeout=CONTROL_TIMEOUT, limit=1)) == {"error": "unknown command 'no_such_command'"}
    # Addressed to another node: not answered.
    assert control.ping(destination=["someone@else"], timeout=1) == []

    control.shutdown(destination=[NODE])
    assert host.proc.wait(30) == 0
    assert "shutdown requested" in host.log


# ------------------------------------------------------------------------------------------------
# Events


class Capture:
    """A real Celery event receiver on its own thread, collecting every event."""

    def __init__(self, app, transport, redis_dbs):
        self.events: list[dict] = []
        self._cond = threading.Condition()
        self._conn = app.connection()
        self._receiver = app.events.Receiver(self._conn, handlers={"*": self._on_event})
        redis_client = redis_dbs.broker
        before = None if transport.is_amqp else redis_client.execute_command("PUBSUB", "NUMPAT")
        self._thread = threading.Thread(target=self._receiver.capture, kwargs=dict(limit=None, timeout=None, wakeup=False),
                                        daemon=True)
        self._thread.start()
        if transport.is_amqp:
            # The receiver declares its own queue on celeryev once consuming starts: wait until it exists.
            name = self._receiver.queue.name

            def declared():
                with app.connection_for_write() as conn:
                    try:
                        conn.default_channel.queue_declare(queue=name, passive=True)
                        return True
                    except ResourceLocked:  # exclusive to the receiver's connection (Celery 5.7): it exists
                        return True
                    except NotFound:
                        return False
            wait_until(declared, 10, "the receiver's queue")
        else:
            # kombu PSUBSCRIBEs when consuming starts: wait until Redis counts the new pattern.
            wait_until(lambda: redis_client.execute_command("PUBSUB", "NUMPAT") > before, 10, "the receiver's PSUBSCRIBE")

    def _on_event(self, event):
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, predicate, what: str, timeout: float = RESULT_TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self.events:
                    if predicate(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no event {what} within {timeout} s; got {[e['type'] for e in self.events]}")
                self._cond.wait(left)

    def of(self, uuid: str) -> list[dict]:
        with self._cond:
            return [e for e in self.events if e.get("uuid") == uuid]

    def heartbeat_after(self, t: float) -> dict:
        """A heartbeat sent after epoch `t`: events are published in order, so every event sent
        before it has arrived."""
        return self.wait_for(lambda e: e["type"] == "worker-heartbeat" and e["timestamp"] > t, f"heartbeat after {t}")

    def stop(self):
        self._receiver.should_stop = True
        self._thread.join(10)
        self._conn.release()


COMMON = {"hostname", "timestamp", "utcoffset", "pid", "clock", "type"}


@pytest.mark.all_brokers(["redis", "amqp+redis"])
def test_events_reach_a_real_receiver_and_obey_enable_and_disable(serve, make_functions, celery_app, redis_dbs, transport):
    capture = Capture(celery_app, transport, redis_dbs)
    try:
        host = serve(make_functions(), "-n", NODE, "--heartbeat-interval", "0.5")
        online = capture.wait_for(lambda e: e["type"] == "worker-online", "worker-online")
        assert COMMON <= online.keys() and online["hostname"] == NODE and online["utcoffset"] == 0.0
        assert {"freq", "active", "processed", "loadavg", "sw_ident", "sw_ver", "sw_sys"} <= online.keys()

        # Task events are off until enabled (no -E).
        quiet = celery_app.send_task("math.add", args=[1, 1], queue="math.add")
        assert quiet.get(timeout=RESULT_TIMEOUT) == 2
        capture.heartbeat_after(time.time())
        assert capture.of(quiet.id) == []

        assert celery_app.control.enable_events(reply=True, timeout=CONTROL_TIMEOUT, limit=1) == [{NODE: {"ok": "task events enabled"}}]
        ok = celery_app.send_task("math.add", args=[2, 3], kwargs={}, queue="math.add")
        assert ok.get(timeout=RESULT_TIMEOUT) == 5
        bad = celery_app.send_task("math.div", args=[1, 0], queue="math.div")
        with pytest.raises(ZeroDivisionError):
            bad.get(timeout=RESULT_TIMEOUT)
        capture.heartbeat_after(time.time())

        received, started, succeeded = capture.of(ok.id)
        assert [received["type"], started["type"], succeeded["type"]] == ["task-received", "task-started", "task-succeeded"]
        for e in (received, started, succeeded):
            assert COMMON <= e.keys() and e["hostname"] == NODE
        assert received["clock"] < started["clock"] < succeeded["clock"]
        assert received["name"] == "math.add" and received["args"] == "[2, 3]" and received["kwargs"] == "{}"
        assert received["retries"] == 0 and received["eta"] is None and received["expires"] is None
        assert received["root_id"] == ok.id and received["parent_id"] is None
        assert succeeded["result"] == "5" and isinstance(succeeded["runtime"], float) and succeeded["runtime"] >= 0
        failed = capture.of(bad.id)[-1]
        assert failed["type"] == "task-failed"
        assert failed["exception"] == "ZeroDivisionError('division by zero')" and "ZeroDivisionError" in failed["traceback"]

        # `heartbeat` asks for one now, with freq 5, as Celery's worker answers a new receiver.
        celery_app.control.heartbeat()
        capture.wait_for(lambda e: e["type"] == "worker-heartbeat" and e["freq"] == 5.0, "a heartbeat with freq 5")

        assert celery_app.control.disable_events(reply=True, timeout=CONTROL_TIMEOUT, limit=1) == [{NODE: {"ok": "task events disabled"}}]
        after = celery_app.send_task("math.add", args=[3, 3], queue="math.add")
        assert after.get(timeout=RESULT_TIMEOUT) == 6
        capture.heartbeat_after(time.time())
        assert capture.of(after.id) == []

        assert host.terminate() == 0
        offline = capture.wait_for(lambda e: e["type"] == "worker-offline", "worker-offline")
        assert offline["hostname"] == NODE
    finally:
        capture.stop()


@pytest.mark.all_brokers(["redis", "amqp+redis"])
def test_dash_E_sends_task_events_from_the_start_including_revoked(serve, make_functions, celery_app, redis_dbs, transport):
    capture = Capture(celery_app, transport, redis_dbs)
    try:
        serve(make_functions(), "-n", NODE, "-E")
        ok = celery_app.send_task("math.add", args=[2, 2], queue="math.add")
        assert ok.get(timeout=RESULT_TIMEOUT) == 4
        capture.wait_for(lambda e: e["type"] == "task-succeeded" and e["uuid"] == ok.id, "task-succeeded")
        expired = celery_app.send_task("math.add", args=[1, 1], queue="math.add", expires=-1)
        revoked = capture.wait_for(lambda e: e["type"] == "task-revoked" and e["uuid"] == expired.id, "task-revoked")
        assert revoked["expired"] is True and revoked["terminated"] is False and revoked["signum"] is None
    finally:
        capture.stop()


# ------------------------------------------------------------------------------------------------
# Logs


def test_json_logs_are_one_object_per_line_with_task_id_and_name(serve, make_functions, celery_app):
    host = serve(make_functions(), "--log-format", "json")
    bad = celery_app.send_task("math.div", args=[1, 0], queue="math.div")
    with pytest.raises(ZeroDivisionError):
        bad.get(timeout=RESULT_TIMEOUT)
    host.wait_for_log(rf'"task_id":"{bad.id}"')
    lines = [json.loads(line) for line in host.stderr.text.splitlines()]
    assert all({"timestamp", "level", "logger", "source", "message"} <= line.keys() for line in lines)
    [failed] = [line for line in lines if line.get("task_id") == bad.id]
    assert failed["task_name"] == "math.div" and failed["level"] == "info"
    assert failed["message"] == f"task math.div[{bad.id}] failed: ZeroDivisionError: division by zero"
    assert any(line["message"].startswith("fnhost ready") for line in lines)


def test_an_unknown_log_format_is_a_clear_error(fnhost_cli, make_functions):
    out = fnhost_cli("serve", "--functions", make_functions(), "--log-format", "yaml")
    assert out.returncode != 0
    assert "unknown log format 'yaml': text or json" in out.stderr
