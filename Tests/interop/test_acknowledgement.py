"""Acknowledgement in kombu's Redis layout (`unacked` hash + `unacked_index` zset): late ack by
default, early ack on request, warm shutdown on SIGTERM, and what a SIGKILL leaves behind."""

import json
import os
import signal
import time

from kombu import Connection

from helpers import (
    RESULT_TIMEOUT,
    ack_bookkeeping_is_empty,
    clean_env,
    queued_task_ids,
    task_meta,
    unacked_entries,
    unacked_task_ids,
    wait_until,
)


def slow(app, seconds, queue="math.slow"):
    return app.send_task("math.slow", args=[seconds], queue=queue)


def warm_up(app):
    """One finished math.slow: its pool exists, so the next one starts without a process spawn."""
    slow(app, 0).get(timeout=RESULT_TIMEOUT)


def test_unacked_bookkeeping_is_empty_after_tasks_complete(serve, make_functions, celery_app, redis_dbs):
    serve(make_functions(), "-c", "2")
    results = [celery_app.send_task("math.add", args=[i, i], queue="math.add") for i in range(30)]
    results += [celery_app.send_task("math.div", args=[1, 0], queue="math.div") for _ in range(5)]
    results += [celery_app.send_task("text.upper", args=["x"], queue="text.upper") for _ in range(5)]
    for r in results:
        r.get(timeout=RESULT_TIMEOUT, propagate=False)
    wait_until(lambda: ack_bookkeeping_is_empty(redis_dbs.broker), 10,
               f"unacked to be empty (left: {unacked_task_ids(redis_dbs.broker)})")
    for queue in ("math.add", "math.div", "text.upper"):
        assert redis_dbs.broker.llen(queue) == 0


def test_running_delivery_sits_in_unacked_with_its_envelope_exchange_and_routing_key(
    serve, make_functions, celery_app, redis_dbs
):
    serve(make_functions(), "-c", "1")
    r = slow(celery_app, 2)
    wait_until(lambda: r.id in unacked_task_ids(redis_dbs.broker), 10, "the delivery to appear in unacked")
    ((tag, (envelope, exchange, routing_key)),) = unacked_entries(redis_dbs.broker).items()
    assert tag == envelope["properties"]["delivery_tag"]
    assert (exchange, routing_key) == ("", "math.slow")
    assert envelope["headers"]["task"] == "math.slow" and envelope["body"]
    score = redis_dbs.broker.zscore("unacked_index", tag)
    assert score is not None and abs(score - time.time()) < 3600
    r.get(timeout=RESULT_TIMEOUT)
    wait_until(lambda: ack_bookkeeping_is_empty(redis_dbs.broker), 10, "unacked to be empty after the task")


def test_sigterm_finishes_running_task_requeues_the_waiting_one_and_exits_zero(
    serve, make_functions, celery_app, redis_dbs
):
    host = serve(make_functions(), "-c", "1", "-l", "debug")
    warm_up(celery_app)
    first, second = slow(celery_app, 4), slow(celery_app, 2)
    # SIGTERM only once the first task has started in its worker process (its own log line), so
    # a loaded machine cannot let it finish and start the second one before the signal lands.
    host.wait_for_log(r"math\.slow: sleeping 4\.000 s in pid")

    assert host.terminate() == 0, host.describe()

    assert first.get(timeout=RESULT_TIMEOUT)["pid"] != host.pid
    assert first.state == "SUCCESS"
    assert queued_task_ids(redis_dbs.broker, "math.slow") == [second.id]
    assert ack_bookkeeping_is_empty(redis_dbs.broker), unacked_entries(redis_dbs.broker)
    assert task_meta(redis_dbs.backend, second.id) is None


def test_sigint_is_a_warm_shutdown_too(serve, make_functions, celery_app, redis_dbs):
    host = serve(make_functions(), "-c", "1")
    assert celery_app.send_task("math.add", args=[1, 2], queue="math.add").get(timeout=RESULT_TIMEOUT) == 3
    host.proc.send_signal(signal.SIGINT)
    assert host.proc.wait(30) == 0, host.describe()
    assert ack_bookkeeping_is_empty(redis_dbs.broker)


def test_requeued_task_is_served_by_the_next_host(serve, make_functions, celery_app, redis_dbs):
    functions = make_functions()
    host = serve(functions, "-c", "1")
    warm_up(celery_app)
    first, second = slow(celery_app, 1), slow(celery_app, 0.1)
    wait_until(lambda: first.id in unacked_task_ids(redis_dbs.broker), 10, "the first delivery")
    time.sleep(0.5)
    assert host.terminate() == 0, host.describe()
    serve(functions, "-c", "1")
    assert set(second.get(timeout=RESULT_TIMEOUT)) == {"pid", "start", "end"}
    wait_until(lambda: ack_bookkeeping_is_empty(redis_dbs.broker), 10, "unacked to be empty")


def test_sigkill_during_late_ack_task_leaves_a_restorable_delivery(serve, make_functions, celery_app, redis_dbs):
    functions = make_functions()
    host = serve(functions, "-c", "1")
    r = slow(celery_app, 5)
    wait_until(lambda: r.id in unacked_task_ids(redis_dbs.broker), 10, "the delivery to appear in unacked")
    time.sleep(0.5)

    host.kill()

    entries = unacked_entries(redis_dbs.broker)
    assert len(entries) == 1, entries
    ((tag, (envelope, exchange, routing_key)),) = entries.items()
    assert envelope["headers"]["id"] == r.id
    assert (exchange, routing_key) == ("", "math.slow")
    assert redis_dbs.broker.zscore("unacked_index", tag) is not None
    assert task_meta(redis_dbs.backend, r.id) is None

    # kombu's own visibility-timeout sweep (what any Python worker on this broker runs) restores it
    with Connection(redis_dbs.broker_url, transport_options={"visibility_timeout": 0}) as conn:
        conn.default_channel.qos.restore_visible(num=100)
    assert ack_bookkeeping_is_empty(redis_dbs.broker)
    (restored,) = [json.loads(m) for m in redis_dbs.broker.lrange("math.slow", 0, -1)]
    assert restored["headers"]["id"] == r.id and restored["headers"].get("redelivered") is True

    serve(functions, "-c", "1")
    assert set(r.get(timeout=RESULT_TIMEOUT)) == {"pid", "start", "end"}


def test_an_idle_host_never_takes_a_message_off_its_list_before_recording_it(serve, make_functions, celery_app, redis_dbs, tmp_path):
    """kombu's idle path (BRPOP, then the bookkeeping) loses a message when the host dies, or its
    connection is cut, between the two: Redis pops it for a host that never reads the reply.
    fnhost waits without popping, so a frozen (then killed) idle host leaves the message queued,
    or, when the fetch script the idle host runs every second was already on its way when it
    froze (Redis may run it just after the message came), recorded in `unacked` with a lease:
    never outside both."""
    functions = make_functions()
    config = tmp_path / "fnhost.yml"
    config.write_text("broker_transport_options: {fnhost_lease_timeout: 2}\n")  # a recorded message comes back soon
    host = serve(functions, "-c", "1", "--config", config)
    assert celery_app.send_task("math.add", args=[1, 1], queue="math.add").get(timeout=RESULT_TIMEOUT) == 2
    time.sleep(1.5)  # let it go idle, waiting on its empty queues (not a timing assertion)
    os.kill(host.pid, signal.SIGSTOP)
    try:
        r = celery_app.send_task("math.add", args=[20, 22], queue="math.add")
        time.sleep(1)  # what a blocking pop would do, Redis does without the frozen host
        queued, recorded = queued_task_ids(redis_dbs.broker, "math.add"), unacked_task_ids(redis_dbs.broker)
        assert (queued, recorded) in (([r.id], set()), ([], {r.id})), f"the message left its list unrecorded: {queued} {recorded}"
    finally:
        host.kill()
    serve(functions, "-c", "1", "--config", config)
    assert r.get(timeout=RESULT_TIMEOUT) == 42


def test_sigkill_during_early_ack_task_leaves_nothing_in_unacked(serve, make_functions, celery_app, redis_dbs):
    host = serve(make_functions("options"), "-c", "1")
    r = celery_app.send_task("opts.early_ack", args=[5], queue="opts.early_ack")
    wait_until(lambda: redis_dbs.broker.llen("opts.early_ack") == 0, 10, "the delivery to be fetched")
    wait_until(lambda: ack_bookkeeping_is_empty(redis_dbs.broker), 3,
               "the early ack: acks_late false must remove the delivery from unacked before it runs")
    time.sleep(1.0)  # it is now running (5 s); a late ack would still hold it

    host.kill()

    assert ack_bookkeeping_is_empty(redis_dbs.broker), unacked_entries(redis_dbs.broker)
    assert redis_dbs.broker.llen("opts.early_ack") == 0
    assert task_meta(redis_dbs.backend, r.id) is None


def test_early_ack_task_still_stores_its_result(serve, make_functions, celery_app, redis_dbs):
    serve(make_functions("options"), "-c", "1")
    r = celery_app.send_task("opts.early_ack", args=[0.1], queue="opts.early_ack")
    r.get(timeout=RESULT_TIMEOUT)
    assert r.state == "SUCCESS"
    assert ack_bookkeeping_is_empty(redis_dbs.broker)


def test_reject_on_worker_lost_redelivers_the_message_instead_of_failing_it(serve, make_functions, celery_app, redis_dbs, tmp_path):
    marker = tmp_path / "crashed-once"
    host = serve(make_functions("crashonce", examples=False), "-c", "1", env=clean_env({"FNHOST_TEST_CRASH_ONCE": str(marker)}))
    result = celery_app.send_task("crashonce.run", queue="crashonce.run")
    assert result.get(timeout=RESULT_TIMEOUT) == "survived"
    assert marker.exists(), "the first run did not crash"
    assert "worker process lost" in host.log
    wait_until(lambda: ack_bookkeeping_is_empty(redis_dbs.broker), 10, "unacked to be empty")
