"""Messages that cannot run go to the dead-letter queue (the Redis list `fnhost.dlq`) with the
reason and the original message intact, acknowledged in the same step; `fnhost dlq list`,
`replay` and `purge` work against the broker. Celery's worker drops them (Redis has no
dead-lettering); the FAILURE result a producer sees is stored as before."""

import json

import pytest
from celery.exceptions import MaxRetriesExceededError, NotRegistered

from helpers import RESULT_TIMEOUT, ack_bookkeeping_is_empty, wait_until


def entries(broker):
    return [json.loads(raw) for raw in broker.lrange("fnhost.dlq", 0, -1)]


def dlq(fnhost_cli, redis_dbs, *args):
    done = fnhost_cli("dlq", *args, "--broker", redis_dbs.broker_url)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_unknown_task_is_dead_lettered_intact_and_still_fails_for_the_producer(serve, make_functions, celery_app, redis_dbs):
    serve(make_functions(), "-Q", "celery")
    result = celery_app.send_task("no.such.task", args=[1, "two"], queue="celery")
    with pytest.raises(NotRegistered):
        result.get(timeout=RESULT_TIMEOUT)
    wait_until(lambda: len(entries(redis_dbs.broker)) == 1, 10, "a dead letter")
    entry = entries(redis_dbs.broker)[0]
    assert entry["reason"].startswith("NotRegistered")
    assert entry["queue"] == "celery" and entry["task"] == "no.such.task" and entry["task_id"] == result.id
    envelope = json.loads(entry["envelope"])
    assert envelope["headers"]["id"] == result.id and envelope["headers"]["task"] == "no.such.task"
    assert ack_bookkeeping_is_empty(redis_dbs.broker)


def test_garbage_is_dead_lettered_byte_for_byte(serve, make_functions, celery_app, redis_dbs):
    serve(make_functions())
    redis_dbs.broker.lpush("math.add", b"this is not an envelope")
    assert celery_app.send_task("math.add", args=[1, 1], queue="math.add").get(timeout=RESULT_TIMEOUT) == 2
    wait_until(lambda: len(entries(redis_dbs.broker)) == 1, 10, "a dead letter")
    assert entries(redis_dbs.broker)[0]["envelope"] == "this is not an envelope"


def test_exhausted_retries_are_dead_lettered_and_replay_runs_them_again(serve, make_functions, celery_app, redis_dbs, fnhost_cli):
    host = serve(make_functions("retry"))
    result = celery_app.send_task("retry.always", queue="retry.always")
    with pytest.raises(MaxRetriesExceededError):
        result.get(timeout=RESULT_TIMEOUT)
    wait_until(lambda: len(entries(redis_dbs.broker)) == 1, 10, "a dead letter")
    first = entries(redis_dbs.broker)[0]
    assert first["reason"].startswith("MaxRetriesExceededError")
    assert json.loads(first["envelope"])["headers"]["retries"] == 3

    listing = dlq(fnhost_cli, redis_dbs, "list")
    assert first["id"] in listing and "retry.always" in listing and "1 dead letter" in listing

    assert f"replayed {first['id']}" in dlq(fnhost_cli, redis_dbs, "replay", first["id"])
    # Replayed with retries reset: it runs and retries 3 more times, then is dead-lettered again.
    wait_until(lambda: host.log.count(f"retry.always[{result.id}] asks for a retry") == 8, RESULT_TIMEOUT, "the replayed task to run again")
    wait_until(lambda: len(entries(redis_dbs.broker)) == 1 and entries(redis_dbs.broker)[0]["id"] != first["id"], 10,
               "the replayed task to be dead-lettered again")

    assert "1 purged" in dlq(fnhost_cli, redis_dbs, "purge")
    assert entries(redis_dbs.broker) == []


def test_dlq_replay_of_an_unknown_id_is_an_error(fnhost_cli, redis_dbs):
    done = fnhost_cli("dlq", "replay", "nope", "--broker", redis_dbs.broker_url)
    assert done.returncode != 0
    assert "no dead letter with id nope" in done.stderr
