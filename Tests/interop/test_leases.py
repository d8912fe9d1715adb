"""fnhost's delivery leases on Redis (`fnhost.leases`): the deliveries of a host killed with
SIGKILL go back to their queues within the lease (seconds), not kombu's visibility timeout (an
hour); a live host's deliveries are never restored, however long its tasks run; queues a host
does not serve and deliveries of Python Celery workers (which hold no lease) are left alone."""

import json
import time

from kombu import Connection

from helpers import (
    RESULT_TIMEOUT,
    ack_bookkeeping_is_empty,
    park_envelope,
    task_meta,
    unacked_entries,
    unacked_task_ids,
    wait_until,
)

LEASES = "fnhost.leases"


def config(tmp_path, lease, visibility=None, name="fnhost.yml"):
    path = tmp_path / name
    options = {"fnhost_lease_timeout": lease}
    if visibility is not None:
        options["visibility_timeout"] = visibility
    path.write_text(f"broker_transport_options: {json.dumps(options)}\n")
    return path


def test_a_killed_hosts_deliveries_run_on_the_next_host_within_the_lease(
        serve, make_functions, celery_app, redis_dbs, tmp_path):
    functions = make_functions()
    cfg = config(tmp_path, 3)  # visibility_timeout stays kombu's hour
    first = serve(functions, "-c", "2", "--config", cfg)
    results = [celery_app.send_task("math.slow", args=[0.5], queue="math.slow") for _ in range(12)]
    results += [celery_app.send_task("math.add", args=[i, 1], queue="math.add") for i in range(100)]
    wait_until(lambda: sum(r.ready() for r in results[:12]) >= 2 and len(unacked_task_ids(redis_dbs.broker)) >= 2,
               RESULT_TIMEOUT, "the stream to be under way with deliveries held")
    held = unacked_task_ids(redis_dbs.broker)
    first.kill()
    orphans = unacked_task_ids(redis_dbs.broker)
    assert orphans, f"the killed host held nothing (it held {held} just before)"
    assert set(unacked_entries(redis_dbs.broker)) <= {t.decode() for t in redis_dbs.broker.zrange(LEASES, 0, -1)}, \
        "every delivery fnhost holds has a lease"

    second = serve(functions, "-c", "2", "--config", cfg)
    for r in results[:12]:
        assert set(r.get(timeout=60)) == {"pid", "start", "end"}
    assert [r.get(timeout=60) for r in results[12:]] == [i + 1 for i in range(100)]
    second.wait_for_log(r"restored \d+ deliveries whose lease expired")
    wait_until(lambda: ack_bookkeeping_is_empty(redis_dbs.broker), 10, "unacked to be empty")
    wait_until(lambda: redis_dbs.broker.zcard(LEASES) == 0, 10, "every lease to be gone with its ack")


def test_a_task_longer_than_the_lease_and_the_visibility_timeout_is_never_restored_while_its_host_lives(
        serve, make_functions, celery_app, redis_dbs, tmp_path):
    functions = make_functions()
    cfg = config(tmp_path, 1, visibility=2)
    holder = serve(functions, "-c", "1", "--config", cfg, "-l", "debug")
    celery_app.send_task("math.slow", args=[0], queue="math.slow").get(timeout=RESULT_TIMEOUT)  # warm pool
    r = celery_app.send_task("math.slow", args=[8], queue="math.slow")
    wait_until(lambda: r.id in unacked_task_ids(redis_dbs.broker), 10, "the delivery to be held")
    # A second fnhost host serving the same queue sweeps leases and visibility timeouts all along.
    other = serve(functions, "-c", "1", "--config", cfg, "-l", "debug")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(1)
        # A Python Celery worker's own visibility-timeout sweep (visibility_timeout 2 s) runs too.
        with Connection(redis_dbs.broker_url, transport_options={"visibility_timeout": 2}) as conn:
            conn.default_channel.qos.restore_visible(num=100)
        assert r.id in unacked_task_ids(redis_dbs.broker), "a live host's delivery was restored"
        assert redis_dbs.broker.llen("math.slow") == 0
    assert set(r.get(timeout=RESULT_TIMEOUT)) == {"pid", "start", "end"}
    assert "restored" not in holder.log and "restored" not in other.log
    runs = holder.log.count("sleeping 8.000 s") + other.log.count("sleeping 8.000 s")
    assert runs == 1, f"the task ran {runs} times"
    wait_until(lambda: ack_bookkeeping_is_empty(redis_dbs.broker), 10, "unacked to be empty")


def orphan(broker, envelope, lease_offset, index_offset=0.0):
    """Records `envelope` as an unacknowledged delivery the way a host does (kombu's `unacked`
    and `unacked_index`), with an fnhost lease ending `lease_offset` s from now (None: no lease,
    as a Python Celery worker leaves it)."""
    tag = envelope["properties"]["delivery_tag"]
    routing_key = envelope["properties"]["delivery_info"]["routing_key"]
    broker.hset("unacked", tag, json.dumps([envelope, "", routing_key]))
    broker.zadd("unacked_index", {tag: time.time() + index_offset})
    if lease_offset is not None:
        broker.zadd(LEASES, {tag: time.time() + lease_offset})
    return tag


def test_the_lease_sweep_restores_only_its_own_queues_and_never_a_python_workers_delivery(
        serve, make_functions, celery_app, redis_dbs, tmp_path):
    broker = redis_dbs.broker
    mine = park_envelope(celery_app, broker, "math.add", args=[20, 22])
    mine["properties"]["delivery_info"]["routing_key"] = "math.add"
    others = park_envelope(celery_app, broker, "other.task", args=[])
    others["properties"]["delivery_info"]["routing_key"] = "other.queue"
    pythons = park_envelope(celery_app, broker, "math.add", args=[1, 1])
    pythons["properties"]["delivery_info"]["routing_key"] = "math.add"
    mine_tag = orphan(broker, mine, lease_offset=-100)
    others_tag = orphan(broker, others, lease_offset=-100)
    pythons_tag = orphan(broker, pythons, lease_offset=None, index_offset=-100)

    host = serve(make_functions(), "-c", "1", "--config", config(tmp_path, 1))
    host.wait_for_log(r"restored 1 deliveries whose lease expired")
    wait_until(lambda: (task_meta(redis_dbs.backend, mine["headers"]["id"]) or {}).get("status") == "SUCCESS",
               RESULT_TIMEOUT, "the orphan of a served queue to run")
    assert task_meta(redis_dbs.backend, mine["headers"]["id"])["result"] == 42
    time.sleep(3)  # several more sweeps; the other two must still be where they were
    entries = unacked_entries(broker)
    assert set(entries) == {others_tag, pythons_tag}, entries
    assert broker.zscore(LEASES, others_tag) is not None, "a lease of a queue this host does not serve was touched"
    assert broker.zscore(LEASES, pythons_tag) is None
    assert broker.llen("other.queue") == 0 and broker.llen("math.add") == 0
    assert task_meta(redis_dbs.backend, pythons["headers"]["id"]) is None
    assert mine_tag not in entries
