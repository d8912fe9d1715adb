"""Messages a worker cannot run, LPUSHed raw into a function's queue. Without a task id they are
logged and dropped; with one they fail with Celery's own exception types. Every time, the next
good message is still served."""

import base64
import json
import pickle

import pytest
from celery.result import AsyncResult
from kombu.exceptions import ContentDisallowed, DecodeError

from helpers import RESULT_TIMEOUT, ack_bookkeeping_is_empty, park_envelope, task_meta, wait_until

QUEUE = "math.add"


@pytest.fixture
def host(serve, make_functions):
    return serve(make_functions(), "-c", "1")


def good_task_still_succeeds(app, broker):
    assert app.send_task("math.add", args=[2, 3], queue=QUEUE).get(timeout=RESULT_TIMEOUT) == 5
    assert broker.llen(QUEUE) == 0
    wait_until(lambda: ack_bookkeeping_is_empty(broker), 10, "unacked to be empty")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def without_id(env):
    del env["headers"]["id"]
    env["properties"].pop("correlation_id", None)
    return json.dumps(env)


@pytest.mark.parametrize(
    "make_raw",
    [
        lambda env: b"this is not json {",
        lambda env: json.dumps(env)[:-7],  # truncated
        lambda env: json.dumps([1, 2, 3]),
        lambda env: b"\xff\xfe\x00 binary",
        without_id,
    ],
    ids=["not-json", "truncated-json", "json-array", "not-utf8", "no-task-id"],
)
def test_message_without_a_task_id_is_dropped_and_next_task_served(host, celery_app, redis_dbs, make_raw):
    env = park_envelope(celery_app, redis_dbs.broker, "math.add", [1, 1])
    task_id = env["headers"]["id"]
    redis_dbs.broker.lpush(QUEUE, make_raw(env))
    good_task_still_succeeds(celery_app, redis_dbs.broker)
    assert task_meta(redis_dbs.backend, task_id) is None


@pytest.mark.parametrize(
    "body",
    [
        "!!!! not base64 !!!!",
        b64(b"not json at all"),
        b64(json.dumps({"a": 1}).encode()),
        b64(json.dumps([2, 3]).encode()),
        b64(json.dumps("[[2, 3], {}, {}]").encode()),
    ],
    ids=["body-not-base64", "body-not-json", "body-json-object", "body-not-args-kwargs-embed", "body-json-string"],
)
def test_undecodable_body_fails_with_decode_error(host, celery_app, redis_dbs, body):
    env = park_envelope(celery_app, redis_dbs.broker, "math.add", [2, 3])
    env["body"] = body
    redis_dbs.broker.lpush(QUEUE, json.dumps(env))
    r = AsyncResult(env["headers"]["id"], app=celery_app)
    with pytest.raises(DecodeError):
        r.get(timeout=RESULT_TIMEOUT)
    assert task_meta(redis_dbs.backend, r.id)["result"]["exc_module"] == "kombu.exceptions"
    good_task_still_succeeds(celery_app, redis_dbs.broker)


PICKLE_BODY = pickle.dumps(((2, 3), {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}), protocol=2)
YAML_BODY = b"- [2, 3]\n- {}\n- {callbacks: null, errbacks: null, chain: null, chord: null}\n"


@pytest.mark.parametrize(
    "content_type, encoding, body",
    [
        ("application/x-python-serialize", "binary", PICKLE_BODY),
        ("application/x-yaml", "utf-8", YAML_BODY),
        ("application/x-msgpack", "binary", b"\x93\x92\x02\x03\x80\x80"),
    ],
    ids=["pickle", "yaml", "msgpack"],
)
def test_foreign_content_type_fails_with_content_disallowed(host, celery_app, redis_dbs, content_type, encoding, body):
    env = park_envelope(celery_app, redis_dbs.broker, "math.add", [2, 3])
    env["content-type"], env["content-encoding"], env["body"] = content_type, encoding, b64(body)
    redis_dbs.broker.lpush(QUEUE, json.dumps(env))
    r = AsyncResult(env["headers"]["id"], app=celery_app)
    with pytest.raises(ContentDisallowed):
        r.get(timeout=RESULT_TIMEOUT)
    good_task_still_succeeds(celery_app, redis_dbs.broker)


def test_burst_of_bad_messages_then_good_ones_all_settle(host, celery_app, redis_dbs):
    ids = []
    for i in range(10):
        env = park_envelope(celery_app, redis_dbs.broker, "math.add", [i, i])
        env["body"] = "%%%" if i % 2 else b64(b"{}")
        ids.append(env["headers"]["id"])
        redis_dbs.broker.lpush(QUEUE, json.dumps(env))
        redis_dbs.broker.lpush(QUEUE, b"garbage")
    for task_id in ids:
        with pytest.raises(DecodeError):
            AsyncResult(task_id, app=celery_app).get(timeout=RESULT_TIMEOUT)
    good_task_still_succeeds(celery_app, redis_dbs.broker)
