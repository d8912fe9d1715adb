"""RabbitMQ-only behaviour (issue 3 and the RabbitMQ half of issue 4): Celery's topology and a
refused declaration, rpc:// replies on the wire, the delayed store and the dead-letter queue as
queues, a dropped connection and a broker restart mid-stream, and TLS (amqps://)."""

import json
import socket
import time
import urllib.error
import urllib.request

import pytest
from amqp.exceptions import NotFound, PreconditionFailed
from celery import Celery
from celery.exceptions import MaxRetriesExceededError

from helpers import RESULT_TIMEOUT, wait_until

AMQP_ONLY = pytest.mark.all_brokers(["amqp+redis"])
AMQP_BOTH_BACKENDS = pytest.mark.all_brokers(["amqp+rpc", "amqp+redis"])


def channel(app):
    """A raw py-amqp channel on the app's broker (kombu's pyamqp transport), for looking at queues."""
    conn = app.connection_for_write()
    conn.ensure_connection(max_retries=3)
    return conn, conn.default_channel


def queue_depth(app, queue: str) -> int:
    """Messages ready in `queue` (0 when it does not exist yet)."""
    conn, ch = channel(app)
    try:
        return ch.queue_declare(queue=queue, passive=True).message_count
    except NotFound:
        return 0
    finally:
        conn.release()


def drain(app, queue: str) -> list:
    """Every message of `queue`, taken off it (acknowledged)."""
    conn, ch = channel(app)
    out = []
    try:
        while (m := ch.basic_get(queue, no_ack=True)) is not None:
            out.append(m)
    finally:
        conn.release()
    return out


@AMQP_BOTH_BACKENDS
def test_a_stream_of_tasks_all_complete(serve, make_functions, celery_app):
    serve(make_functions(), "-c", "2")
    results = [celery_app.send_task("math.add", args=[i, 1], queue="math.add") for i in range(300)]
    assert [r.get(timeout=60) for r in results] == [i + 1 for i in range(300)]


@AMQP_ONLY
def test_queues_are_declared_as_celery_declares_them(serve, make_functions, celery_app):
    serve(make_functions(), "-c", "1")
    # A Celery producer declares the same queue with its own flags: a difference would be a 406
    # channel error here, and the task would not arrive.
    assert celery_app.send_task("math.add", args=[1, 2], queue="math.add").get(timeout=RESULT_TIMEOUT) == 3
    conn, ch = channel(celery_app)
    try:
        ok = ch.queue_declare(queue="math.add", durable=True, auto_delete=False, passive=False)
        assert ok.queue == "math.add" and ok.consumer_count == 1
        ch.exchange_declare("math.add", "direct", durable=True, auto_delete=False, passive=True)
    finally:
        conn.release()


@AMQP_ONLY
def test_a_queue_declared_with_other_arguments_is_reported_then_consumed(serve, make_functions, transport, redis_dbs, tmp_path):
    producer = Celery("prio", broker=transport.broker_url, backend=transport.backend_url, set_as_current=False)
    producer.conf.task_queue_max_priority = 10
    try:
        parked = producer.send_task("math.mul", args=[6, 7], queue="math.mul")  # declares math.mul with x-max-priority 10
        host = serve(make_functions(), "-c", "1")
        line = host.wait_for_log(r"queue 'math.mul' exists with other arguments").string
        assert "ours: none" in line and "x-max-priority" in line and "PRECONDITION_FAILED" in line
        assert parked.get(timeout=RESULT_TIMEOUT) == 42
    finally:
        producer.close()


@AMQP_ONLY
def test_task_queue_max_priority_in_config_matches_the_producer(serve, make_functions, transport, tmp_path):
    producer = Celery("prio", broker=transport.broker_url, backend=transport.backend_url, set_as_current=False)
    producer.conf.task_queue_max_priority = 10
    config = tmp_path / "fnhost.yml"
    config.write_text("task_queue_max_priority: 10\n")
    try:
        parked = producer.send_task("math.mul", args=[6, 7], queue="math.mul", priority=9)
        host = serve(make_functions(), "-c", "1", "--config", config)
        assert parked.get(timeout=RESULT_TIMEOUT) == 42
        assert "exists with other arguments" not in host.log
    finally:
        producer.close()


@pytest.mark.all_brokers(["amqp+rpc"])
def test_rpc_replies_one_message_per_state_change_on_the_wire(serve, make_functions, celery_app, tmp_path):
    config = tmp_path / "fnhost.yml"
    config.write_text("tasks:\n  retry.always: { max_retries: 2, default_retry_delay: 0 }\n")
    serve(make_functions("retry"), "-c", "1", "--config", config)
    conn, ch = channel(celery_app)
    try:
        ch.queue_declare(queue="capture.reply", durable=False, auto_delete=False)
    finally:
        conn.release()
    result = celery_app.send_task("retry.always", queue="retry.always", reply_to="capture.reply")
    messages = wait_until(lambda: (lambda ms: ms if ms and json.loads(ms[-1].body)["status"] == "FAILURE" else None)(
        acc.extend(drain(celery_app, "capture.reply")) or acc), 30, "the final reply", interval=0.2) if (acc := []) == [] else None
    states = [json.loads(m.body)["status"] for m in messages]
    assert states == ["RETRY", "RETRY", "FAILURE"]
    for m in messages:
        assert m.properties["correlation_id"] == result.id
        assert m.properties["delivery_mode"] == 1
        assert m.properties["content_type"] == "application/json"
        doc = json.loads(m.body)
        assert doc["task_id"] == result.id
    final = json.loads(messages[-1].body)
    assert final["result"]["exc_type"] == "MaxRetriesExceededError" and final["date_done"] is not None
    assert json.loads(messages[0].body)["date_done"] is None


@pytest.mark.all_brokers(["amqp+rpc"])
def test_rpc_failure_raises_in_the_producer(serve, make_functions, celery_app):
    serve(make_functions("retry"), "-c", "1")
    with pytest.raises(MaxRetriesExceededError):
        celery_app.send_task("retry.always", queue="retry.always").get(timeout=RESULT_TIMEOUT)


@AMQP_BOTH_BACKENDS
def test_a_long_countdown_waits_in_the_delayed_store_acknowledged(serve, make_functions, celery_app):
    serve(make_functions(), "-c", "1")
    sent = time.time()
    result = celery_app.send_task("math.add", args=[20, 22], queue="math.add", countdown=9)
    # Moved to level 3 (8 s) and acknowledged: math.add holds nothing, unacknowledged or ready.
    wait_until(lambda: queue_depth(celery_app, "fnhost.delayed.3") == 1, 10, "the message to wait in fnhost.delayed.3")
    assert queue_depth(celery_app, "math.add") == 0
    assert result.get(timeout=30) == 42
    assert time.time() - sent >= 8.5


@AMQP_ONLY
def test_unknown_task_goes_to_the_dead_letter_queue_intact_with_its_reason(serve, make_functions, celery_app):
    serve(make_functions(), "-c", "1")
    result = celery_app.send_task("no.such.task", args=[1], queue="math.add")
    with pytest.raises(Exception, match="no.such.task"):
        result.get(timeout=RESULT_TIMEOUT)
    wait_until(lambda: queue_depth(celery_app, "fnhost.dlq") == 1, 10, "the dead letter")
    (m,) = drain(celery_app, "fnhost.dlq")
    headers = m.headers
    assert headers["id"] == result.id and headers["task"] == "no.such.task"
    assert headers["x-fnhost-reason"].startswith("NotRegistered") and headers["x-fnhost-queue"] == "math.add"
    assert json.loads(m.body)[0] == [1]


@AMQP_ONLY
def test_dropped_connections_are_reopened_and_consuming_resumes(serve, make_functions, celery_app, rabbitmq_server, transport):
    host = serve(make_functions(), "-c", "2")
    assert celery_app.send_task("math.add", args=[1, 1], queue="math.add").get(timeout=RESULT_TIMEOUT) == 2
    vhost = transport.broker_url.rsplit("/", 1)[1]
    rabbitmq_server.ctl("close_all_connections", "-p", vhost, "interop test drops every connection")
    host.wait_for_log(r"lost the consuming connection")
    host.wait_for_log(r"consuming from .* again")
    results = [celery_app.send_task("math.add", args=[i, i], queue="math.add") for i in range(50)]
    assert [r.get(timeout=60) for r in results] == [2 * i for i in range(50)]


@AMQP_ONLY
def test_a_broker_restart_mid_stream_loses_no_task(serve, make_functions, celery_app, rabbitmq_server):
    port = free_port()
    host = serve(make_functions(), "-c", "2", "--metrics-port", port)
    results = [celery_app.send_task("math.add", args=[i, 1], queue="math.add") for i in range(1000)]
    wait_until(lambda: sum(r.ready() for r in results[:100]) >= 20, 60, "the stream to be under way")
    assert http_status(port, "/readyz") == 200
    rabbitmq_server.stop()
    # Nothing is consumed while RabbitMQ is down: the host is not ready (and says why).
    wait_until(lambda: http_status(port, "/readyz") == 503, 30, "/readyz to fail while the broker is down")
    rabbitmq_server.start()
    host.wait_for_log(r"consuming from .* again", timeout=90)
    wait_until(lambda: http_status(port, "/readyz") == 200, 30, "/readyz to pass again")
    assert [r.get(timeout=120) for r in results] == [i + 1 for i in range(1000)]


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


def _tls_config(tmp_path, ca) -> str:
    config = tmp_path / "fnhost-tls.yml"
    config.write_text(f"broker_use_ssl:\n  ca_certs: {ca}\n  cert_reqs: CERT_REQUIRED\n")
    return str(config)


@AMQP_ONLY
def test_amqps_with_the_servers_ca_serves_tasks(serve, make_functions, transport, rabbitmq_server, tmp_path):
    vhost = transport.broker_url.rsplit("/", 1)[1]
    tls_url = rabbitmq_server.url(vhost, scheme="amqps", host="localhost")
    host = serve(make_functions(), "-c", "1", "--config", _tls_config(tmp_path, rabbitmq_server.certs["ca"]),
                 "--broker", tls_url, "--backend", transport.backend_url, urls=False)
    assert "amqps://guest:***@localhost" in host.log and "guest:guest" not in host.log
    producer = Celery("tls", broker=transport.broker_url, backend=transport.backend_url, set_as_current=False)
    try:
        assert producer.send_task("math.add", args=[2, 3], queue="math.add").get(timeout=RESULT_TIMEOUT) == 5
    finally:
        producer.close()


@AMQP_ONLY
def test_amqps_with_the_wrong_ca_says_so(serve, make_functions, transport, rabbitmq_server, tmp_path):
    vhost = transport.broker_url.rsplit("/", 1)[1]
    tls_url = rabbitmq_server.url(vhost, scheme="amqps", host="localhost")
    other = rabbitmq_server.certs["otherca"]
    host = serve(make_functions(), "-c", "1", "--config", _tls_config(tmp_path, other),
                 "--broker", tls_url, "--backend", transport.backend_url, urls=False, ready=False)
    line = host.wait_for_log(r"TLS handshake").string
    assert "ca_certs" in line and str(other) in line


@AMQP_ONLY
def test_fnhost_dlq_lists_replays_and_purges_on_rabbitmq(serve, make_functions, celery_app, transport, fnhost_cli, tmp_path):
    config = tmp_path / "fnhost.yml"
    config.write_text("tasks:\n  retry.always: { max_retries: 0 }\n")
    host = serve(make_functions("retry"), "-c", "1", "--config", config)
    result = celery_app.send_task("retry.always", queue="retry.always")
    with pytest.raises(MaxRetriesExceededError):
        result.get(timeout=RESULT_TIMEOUT)
    wait_until(lambda: queue_depth(celery_app, "fnhost.dlq") == 1, 10, "the dead letter")

    listed = fnhost_cli("dlq", "list", "--broker", transport.broker_url)
    assert listed.returncode == 0, listed.stderr
    assert f"task=retry.always[{result.id}]" in listed.stdout and "MaxRetriesExceededError" in listed.stdout
    assert "1 dead letter" in listed.stdout and "guest:guest" not in listed.stdout + listed.stderr
    as_json = fnhost_cli("dlq", "list", "--json", "--broker", transport.broker_url)
    entry = json.loads(as_json.stdout.splitlines()[0])
    assert entry["queue"] == "retry.always" and entry["task_id"] == result.id
    assert queue_depth(celery_app, "fnhost.dlq") == 1  # listing takes nothing away

    replayed = fnhost_cli("dlq", "replay", entry["id"], "--broker", transport.broker_url)
    assert replayed.returncode == 0 and f"replayed {entry['id']}" in replayed.stdout, replayed.stderr
    # It runs again (retries reset to 0), exhausts them again and comes back to the queue.
    wait_until(lambda: host.log.count(f"retry.always[{result.id}] asks for a retry") == 2, 20, "the replayed task to run")
    wait_until(lambda: queue_depth(celery_app, "fnhost.dlq") == 1, 10, "the dead letter again")

    purged = fnhost_cli("dlq", "purge", "--broker", transport.broker_url)
    assert purged.returncode == 0 and "1 purged" in purged.stdout, purged.stderr
    assert queue_depth(celery_app, "fnhost.dlq") == 0


@AMQP_ONLY
def test_heartbeats_keep_an_idle_host_connected(serve, make_functions, celery_app, tmp_path):
    config = tmp_path / "fnhost.yml"
    config.write_text("broker_heartbeat: 1\n")
    host = serve(make_functions(), "-c", "1", "--config", config)
    # RabbitMQ closes a connection that misses two heartbeats; stay idle for several periods.
    time.sleep(6)
    assert celery_app.send_task("math.add", args=[1, 2], queue="math.add").get(timeout=RESULT_TIMEOUT) == 3
    assert "lost the consuming connection" not in host.log and "publishing connection lost" not in host.log


@AMQP_ONLY
def test_quorum_queues_as_the_producer_declares_them(serve, make_functions, transport, tmp_path):
    producer = Celery("quorum", broker=transport.broker_url, backend=transport.backend_url, set_as_current=False)
    producer.conf.task_default_queue_type = "quorum"
    producer.conf.task_create_missing_queue_type = "quorum"
    config = tmp_path / "fnhost.yml"
    config.write_text("task_default_queue_type: quorum\n")
    try:
        parked = producer.send_task("math.add", args=[4, 5], queue="math.add")
        host = serve(make_functions(), "-c", "2", "--config", config)
        assert parked.get(timeout=RESULT_TIMEOUT) == 9
        assert "exists with other arguments" not in host.log
    finally:
        producer.close()


CONSUMER_TIMEOUT_2S = "application:set_env(rabbit, consumer_timeout, 2000), application:set_env(rabbit, channel_tick_interval, 500)."
CONSUMER_TIMEOUT_DEFAULT = "application:set_env(rabbit, consumer_timeout, 3600000), application:set_env(rabbit, channel_tick_interval, 60000)."


def held_delivery_is_cut(app) -> bool:
    """The control: a consumer holding a delivery unacknowledged (what Celery's worker does with an
    ETA task) has its channel closed by consumer_timeout within a few seconds."""
    import socket as _socket
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=3)
        raw = conn.connection  # the py-amqp connection
        ch = raw.channel()
        ch.queue_declare("interop.held", durable=False, auto_delete=True)
        ch.basic_publish(amqp_message("held"), routing_key="interop.held")
        ch.basic_consume("interop.held", callback=lambda m: None)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                raw.drain_events(timeout=0.5)
            except _socket.timeout:
                continue
            except PreconditionFailed:
                return True
    return False


def amqp_message(body):
    import amqp
    return amqp.Message(body)


@AMQP_ONLY
def test_a_countdown_longer_than_consumer_timeout_runs_once_on_an_open_channel(serve, make_functions, celery_app, rabbitmq_server):
    # RabbitMQ closes a channel that holds a delivery unacknowledged past consumer_timeout (30 min
    # by default; 2 s here, for the channels opened meanwhile). Celery's worker holds ETA tasks so.
    rabbitmq_server.ctl("eval", CONSUMER_TIMEOUT_2S)
    try:
        host = serve(make_functions(), "-c", "1")
        assert held_delivery_is_cut(celery_app), "consumer_timeout is not in effect: the test would show nothing"
    finally:
        rabbitmq_server.ctl("eval", CONSUMER_TIMEOUT_DEFAULT)
    # 9 s: acknowledged into the 8 s delay level, then held in memory for the last second only.
    result = celery_app.send_task("math.add", args=[1, 2], queue="math.add", countdown=9)
    assert result.get(timeout=40) == 3
    assert "lost the consuming connection" not in host.log and "timed out" not in host.log
    assert host.log.count(f"math.add[{result.id}]") <= 2  # moved once, ran once (no redelivery)
