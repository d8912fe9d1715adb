"""The bad-input catalogue: malformed and hostile messages, each LPUSHed raw into a function's
queue (a kombu envelope a real Celery 5.7 producer wrote, then altered), each with the outcome
fnhost promises for it, and each followed by a good task that must still succeed.

Outcomes (docs/guarantees.md, "Bad input"):
- `DeadLetter(reason)`: no task id can be read (or the message is too large to read), so nobody
  waits on a result; the message goes to the dead-letter queue `fnhost.dlq`, intact, with a
  reason matching the regex, and no result is stored.
- `Failure(exception, message, dead_letter)`: the id can be read; the producer's
  `AsyncResult.get()` raises Celery's or kombu's own exception type with a message matching the
  regex, and the message is dead-lettered with a reason matching `dead_letter` (which starts
  with the exception's type). Headers are checked by the host before anything runs; the body
  by the worker process, which never hands a plugin a body it could not decode.
- `Revoked()`: a well-formed message whose `expires` has passed: REVOKED, as Celery does.
"""

from __future__ import annotations

import base64
import json
import pickle
import re
import zlib
from dataclasses import dataclass
from functools import lru_cache

import pytest
from celery.exceptions import NotRegistered, TaskRevokedError
from celery.result import AsyncResult
from kombu.exceptions import ContentDisallowed, DecodeError

from helpers import RESULT_TIMEOUT, ack_bookkeeping_is_empty, park_envelope, task_meta, wait_until

QUEUE = "math.add"
DEEP = 100_000
MiB = 1 << 20


@dataclass(frozen=True)
class DeadLetter:
    reason: str


@dataclass(frozen=True)
class Failure:
    exception: type
    message: str
    dead_letter: str


@dataclass(frozen=True)
class Revoked:
    pass


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def dumps(env) -> bytes:
    return json.dumps(env).encode()


def with_headers(**changes):
    """A case that sets (or, for the value DELETE, removes) headers."""
    def make(env):
        for key, value in changes.items():
            if value is DELETE:
                env["headers"].pop(key, None)
            else:
                env["headers"][key] = value
        return dumps(env)
    return make


DELETE = object()


def with_body(body: bytes | str):
    """A case whose body is `body` (JSON text), base64-encoded as kombu's Redis transport does."""
    def make(env):
        env["body"] = b64(body)
        return dumps(env)
    return make


def with_raw_json_at(path: tuple, raw: str):
    """A case whose envelope holds `raw` (JSON text too deep for Python's json) at `path`."""
    def make(env):
        target = env
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = "@@RAW@@"
        return dumps(env).replace(b'"@@RAW@@"', raw.encode())
    return make


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@lru_cache(maxsize=1)
def zlib_bomb() -> bytes:
    """A valid zlib stream of 4.5 MB that inflates to 2 GiB of zeros."""
    c = zlib.compressobj(1)
    chunk = bytes(16 * MiB)
    return b"".join([c.compress(chunk) for _ in range(128)] + [c.flush()])


def compressed(kind: str, data_of):
    def make(env):
        env["headers"]["compression"] = kind
        env["body"] = b64(data_of())
        return dumps(env)
    return make


def with_content(content_type, encoding, body: bytes):
    def make(env):
        env["content-type"], env["content-encoding"], env["body"] = content_type, encoding, b64(body)
        return dumps(env)
    return make


def without(*keys):
    def make(env):
        for key in keys:
            del env[key]
        return dumps(env)
    return make


def invalid_utf8_in_header(env):
    return dumps(env).replace(b'"math.add"', b'"math.\xff\xfeadd"', 1)


def envelope_with_nul_bytes(env):
    return b"\x00" * 64 + dumps(env)


PICKLE_BODY = pickle.dumps(((2, 3), {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}), protocol=2)
YAML_BODY = b"- [2, 3]\n- {}\n- {callbacks: null, errbacks: null, chain: null, chord: null}\n"
EMBED = ', {"callbacks": null, "errbacks": null, "chain": null, "chord": null}'

DECODE = "DecodeError"  # the dead-letter reason of a refused message with an id starts with its exception type

CATALOGUE = [
    # -- the envelope itself: no id can be read, so the message is dead-lettered without a result
    pytest.param(lambda env: b"this is not json {", DeadLetter("not a JSON envelope"), id="envelope-not-json"),
    pytest.param(lambda env: dumps(env)[: len(dumps(env)) // 2], DeadLetter("not a JSON envelope"), id="envelope-truncated"),
    pytest.param(lambda env: b"", DeadLetter("not a JSON envelope"), id="envelope-empty"),
    pytest.param(lambda env: b"[1, 2, 3]", DeadLetter("not an envelope object"), id="envelope-json-array"),
    pytest.param(invalid_utf8_in_header, DeadLetter("not valid UTF-8"), id="envelope-invalid-utf8"),
    pytest.param(envelope_with_nul_bytes, DeadLetter("not a JSON envelope"), id="envelope-nul-bytes"),
    pytest.param(lambda env: nested(DEEP).encode(), DeadLetter("nesting deeper than"), id="envelope-nested-100000-deep"),
    pytest.param(with_raw_json_at(("headers", "argsrepr"), nested(DEEP)), DeadLetter("nesting deeper than"), id="header-nested-100000-deep"),
    pytest.param(with_raw_json_at(("headers", "argsrepr"), nested(300)), DeadLetter("nesting deeper than 256"), id="header-nested-300-deep"),
    pytest.param(without("headers"), DeadLetter("no headers object"), id="headers-missing"),
    pytest.param(lambda env: dumps({**env, "headers": [1, 2]}), DeadLetter("no headers object"), id="headers-a-list"),
    pytest.param(with_headers(id=DELETE), DeadLetter("no task id"), id="id-missing"),
    pytest.param(with_headers(id=42), DeadLetter("no task id"), id="id-int"),
    pytest.param(with_headers(id=""), DeadLetter("no task id"), id="id-empty"),
    # -- headers of the wrong types or with absurd values: FAILURE under the id, and dead-lettered
    pytest.param(lambda env: with_headers(id=env["headers"]["id"] + "\x00tail")(env), Failure(DecodeError, "NUL", DECODE), id="id-with-nul-byte"),
    pytest.param(with_headers(task="math.add\x00evil"), Failure(NotRegistered, "math.add", "NotRegistered"), id="task-name-with-nul-byte"),
    pytest.param(with_headers(task=DELETE), Failure(DecodeError, "'task'", DECODE), id="task-missing"),
    pytest.param(with_headers(task=7), Failure(DecodeError, "'task'", DECODE), id="task-int"),
    pytest.param(with_headers(task="x" * 100_000), Failure(NotRegistered, "xxx", "NotRegistered"), id="task-name-100k"),
    pytest.param(with_headers(argsrepr=[1, 2]), Failure(DecodeError, "'argsrepr'", DECODE), id="argsrepr-list"),
    pytest.param(with_headers(kwargsrepr={"a": 1}), Failure(DecodeError, "'kwargsrepr'", DECODE), id="kwargsrepr-dict"),
    pytest.param(with_headers(retries="3"), Failure(DecodeError, "'retries'", DECODE), id="retries-string"),
    pytest.param(with_headers(retries=-1), Failure(DecodeError, "'retries'", DECODE), id="retries-negative"),
    pytest.param(with_headers(retries=2**64), Failure(DecodeError, "'retries'", DECODE), id="retries-2^64"),
    pytest.param(with_headers(retries=1.5), Failure(DecodeError, "'retries'", DECODE), id="retries-float"),
    pytest.param(with_headers(timelimit={"hard": 1}), Failure(DecodeError, "'timelimit'", DECODE), id="timelimit-dict"),
    pytest.param(with_headers(timelimit=[-1, None]), Failure(DecodeError, "'timelimit'", DECODE), id="timelimit-negative"),
    pytest.param(with_headers(timelimit=[1e308, None]), Failure(DecodeError, "'timelimit'", DECODE), id="timelimit-1e308"),
    pytest.param(with_headers(timelimit=[None, float("nan")]), Failure(DecodeError, "'timelimit'", DECODE), id="timelimit-nan"),
    pytest.param(with_headers(timelimit=[1, 2, 3]), Failure(DecodeError, "'timelimit'", DECODE), id="timelimit-three-items"),
    pytest.param(with_headers(eta="99999-01-01T00:00:00"), Failure(DecodeError, "'eta'", DECODE), id="eta-year-99999"),
    pytest.param(with_headers(eta="NaN"), Failure(DecodeError, "'eta'", DECODE), id="eta-nan"),
    pytest.param(with_headers(eta=-1), Failure(DecodeError, "'eta'", DECODE), id="eta-negative-number"),
    pytest.param(with_headers(eta="-2026-01-01T00:00:00"), Failure(DecodeError, "'eta'", DECODE), id="eta-negative-year"),
    pytest.param(with_headers(expires="99999-12-31T23:59:59"), Failure(DecodeError, "'expires'", DECODE), id="expires-year-99999"),
    pytest.param(with_headers(expires=float("nan")), Failure(DecodeError, "'expires'", DECODE), id="expires-nan"),
    pytest.param(with_headers(expires="0001-01-01T00:00:00"), Revoked(), id="expires-year-1"),
    pytest.param(with_headers(ignore_result="yes"), Failure(DecodeError, "'ignore_result'", DECODE), id="ignore-result-string"),
    pytest.param(with_headers(group_index="0"), Failure(DecodeError, "'group_index'", DECODE), id="group-index-string"),
    pytest.param(with_headers(parent_id=["a"]), Failure(DecodeError, "'parent_id'", DECODE), id="parent-id-list"),
    # -- content types, encodings and compression fnhost will not read
    pytest.param(with_content("application/x-python-serialize", "binary", PICKLE_BODY), Failure(ContentDisallowed, "untrusted content", "ContentDisallowed"), id="pickle"),
    pytest.param(with_content("application/x-yaml", "utf-8", YAML_BODY), Failure(ContentDisallowed, "untrusted content", "ContentDisallowed"), id="yaml"),
    pytest.param(with_content("", "", b"[[2, 3], {}, {}]"), Failure(ContentDisallowed, "untrusted content", "ContentDisallowed"), id="content-type-empty"),
    pytest.param(with_content("application/json", "rot13", b"[[2, 3], {}, {}]"), Failure(DecodeError, "content-encoding", DECODE), id="content-encoding-unknown"),
    pytest.param(compressed("application/x-gzip", zlib_bomb), Failure(DecodeError, "compressed", DECODE), id="zlib-bomb-2GiB"),
    pytest.param(compressed("application/x-brotli-bomb", lambda: b"\x00" * 64), Failure(DecodeError, "compressed", DECODE), id="compression-unknown"),
    # -- bodies: base64, UTF-8, JSON, shape ([args, kwargs, embed])
    pytest.param(lambda env: dumps({**env, "body": env["body"][:-3]}), Failure(DecodeError, "base64", DECODE), id="body-base64-truncated"),
    pytest.param(lambda env: dumps({**env, "body": "!!!! not base64 !!!!"}), Failure(DecodeError, "base64", DECODE), id="body-base64-invalid"),
    pytest.param(lambda env: dumps({**env, "body": 12345}), Failure(DecodeError, "no string body", DECODE), id="body-not-a-string"),
    pytest.param(lambda env: dumps({**env, "properties": {**env["properties"], "body_encoding": "rot13"}}),
                 Failure(DecodeError, "body_encoding", DECODE), id="body-encoding-unknown"),
    pytest.param(with_body(b'[["\xff\xfe"], {}' + EMBED.encode() + b"]"), Failure(DecodeError, "UTF-8", DECODE), id="body-invalid-utf8"),
    pytest.param(with_body("[[2, 3], {}" + EMBED), Failure(DecodeError, "not a JSON", DECODE), id="body-json-truncated"),
    pytest.param(with_body(nested(DEEP)), Failure(DecodeError, "nesting deeper than", DECODE), id="body-nested-100000-deep"),
    pytest.param(with_body("[" + nested(DEEP) + ", {}" + EMBED + "]"), Failure(DecodeError, "nesting deeper than", DECODE), id="args-nested-100000-deep"),
    pytest.param(with_body('{"args": [2, 3]}'), Failure(DecodeError, "not a JSON \\[args, kwargs, embed\\]", DECODE), id="body-an-object"),
    pytest.param(with_body("[[2, 3]]"), Failure(DecodeError, "array of 1 elements", DECODE), id="body-one-element"),
    pytest.param(with_body("[[2, 3], {}" + EMBED + ", 4]"), Failure(DecodeError, "array of 4 elements", DECODE), id="body-four-elements"),
    pytest.param(with_body('[{"a": 2}, {}' + EMBED + "]"), Failure(DecodeError, "args", DECODE), id="args-not-a-list"),
    pytest.param(with_body("[[2, 3], [1]" + EMBED + "]"), Failure(DecodeError, "kwargs", DECODE), id="kwargs-not-a-dict"),
]


@pytest.fixture
def host(serve, make_functions):
    return serve(make_functions(), "-c", "1")


def dead_letters(broker):
    return [json.loads(raw) for raw in broker.lrange("fnhost.dlq", 0, -1)]


def stored_message(entry) -> bytes:
    """The message a dead letter keeps (`envelope_base64` when it was not UTF-8)."""
    if "envelope" in entry:
        return entry["envelope"].encode()
    return base64.b64decode(entry["envelope_base64"])


def good_task_still_succeeds(app, broker):
    assert app.send_task("math.add", args=[2, 3], queue=QUEUE).get(timeout=RESULT_TIMEOUT) == 5
    assert broker.llen(QUEUE) == 0
    wait_until(lambda: ack_bookkeeping_is_empty(broker), 10, "unacked to be empty")


def check_outcome(outcome, app, redis_dbs, task_id, raw: bytes):
    if isinstance(outcome, DeadLetter):
        entry = wait_until(lambda: dead_letters(redis_dbs.broker), RESULT_TIMEOUT, "a dead letter")[0]
        assert re.search(outcome.reason, entry["reason"]), entry["reason"]
        assert stored_message(entry) == raw, "the dead letter keeps the message byte for byte"
        if isinstance(task_id, str) and task_id:
            assert task_meta(redis_dbs.backend, task_id) is None
    elif isinstance(outcome, Failure):
        with pytest.raises(outcome.exception) as raised:
            AsyncResult(task_id, app=app).get(timeout=RESULT_TIMEOUT)
        assert re.search(outcome.message, str(raised.value)), str(raised.value)
        entry = wait_until(lambda: dead_letters(redis_dbs.broker), 10, "a dead letter")[0]
        assert re.search(outcome.dead_letter, entry["reason"]), entry["reason"]
        assert entry["task_id"] == task_id and stored_message(entry) == raw
    elif isinstance(outcome, Revoked):
        with pytest.raises(TaskRevokedError):
            AsyncResult(task_id, app=app).get(timeout=RESULT_TIMEOUT)
    else:
        raise AssertionError(f"unknown outcome {outcome!r}")


@pytest.mark.parametrize("make_raw, outcome", CATALOGUE)
def test_hostile_message_has_its_stated_outcome_and_the_host_serves_on(host, celery_app, redis_dbs, make_raw, outcome):
    env = park_envelope(celery_app, redis_dbs.broker, "math.add", [2, 3])
    raw = make_raw(env)
    task_id = env.get("headers", {}).get("id") if isinstance(env.get("headers"), dict) else None
    redis_dbs.broker.lpush(QUEUE, raw)
    check_outcome(outcome, celery_app, redis_dbs, task_id, raw)
    good_task_still_succeeds(celery_app, redis_dbs.broker)
    assert host.proc.poll() is None


def test_catalogue_has_at_least_thirty_cases():
    assert len(CATALOGUE) >= 30


def big_body_envelope(env, size: int) -> bytes:
    """`env` with a body of `size` bytes: valid JSON, `[["xxx..."], {}, embed]`."""
    filler = size - len('[[""], {}' + EMBED + "]")
    env["body"] = b64('[["' + "x" * filler + '"], {}' + EMBED + "]")
    return dumps(env)


def reasons(broker) -> list[str]:
    # The entries themselves hold the whole message; read only their reasons, in Redis.
    script = "local out = {} for i, e in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do out[i] = cjson.decode(e).reason end return out"
    return [r.decode() for r in broker.eval(script, 1, "fnhost.dlq")]


def test_a_100_mb_body_is_dead_lettered_unread_and_the_host_serves_on(host, celery_app, redis_dbs):
    env = park_envelope(celery_app, redis_dbs.broker, "math.add", [2, 3])
    raw = big_body_envelope(env, 100 * MiB)
    redis_dbs.broker.lpush(QUEUE, raw)
    del raw, env
    found = wait_until(lambda: reasons(redis_dbs.broker), RESULT_TIMEOUT, "a dead letter")
    assert re.search(r"the message is \d+ bytes, more than worker_max_message_size \(67108864 bytes\)", found[0]), found
    assert redis_dbs.broker.hlen("unacked") == 0  # never recorded: held only until dead-lettered
    good_task_still_succeeds(celery_app, redis_dbs.broker)
    assert host.proc.poll() is None


def test_max_message_size_is_configurable(serve, make_functions, celery_app, redis_dbs, tmp_path):
    config = tmp_path / "fnhost.yml"
    config.write_text("worker_max_message_size: 4096\n")
    host = serve(make_functions(), "-c", "1", "--config", str(config))
    env = park_envelope(celery_app, redis_dbs.broker, "math.add", [2, 3])
    raw = big_body_envelope(env, 8192)
    redis_dbs.broker.lpush(QUEUE, raw)
    found = wait_until(lambda: dead_letters(redis_dbs.broker), RESULT_TIMEOUT, "a dead letter")
    assert "more than worker_max_message_size (4096 bytes)" in found[0]["reason"] and stored_message(found[0]) == raw
    good_task_still_succeeds(celery_app, redis_dbs.broker)
    assert host.proc.poll() is None


# -- RabbitMQ: where the transport differs (headers are an AMQP table, the body is raw bytes and
# its size is known before anything is read). Published raw with py-amqp, as kombu would.

AMQP_ONLY = pytest.mark.all_brokers(["amqp+redis"])
AMQP_MAX = 1 * MiB


def amqp_headers(task_id: str, **changes) -> dict:
    """The headers table Celery 5.7 sends for math.add(2, 3) (see amqp_task_message.json)."""
    headers = {
        "lang": "py", "task": "math.add", "id": task_id, "shadow": None, "eta": None, "expires": None,
        "group": None, "group_index": None, "retries": 0, "timelimit": [None, None], "root_id": task_id,
        "parent_id": None, "argsrepr": "(2, 3)", "kwargsrepr": "{}", "origin": "interop@test", "ignore_result": False,
    }
    for key, value in changes.items():
        if value is DELETE:
            del headers[key]
        else:
            headers[key] = value
    return headers


GOOD_BODY = b"[[2, 3], {}" + EMBED.encode() + b"]"

AMQP_CATALOGUE = [
    pytest.param(dict(headers=None), DeadLetter("no headers table"), id="no-headers-table"),
    pytest.param(dict(headers={"id": 42}), DeadLetter("no task id"), id="id-int"),
    pytest.param(dict(headers={"retries": "3"}), Failure(DecodeError, "'retries'", DECODE), id="retries-string"),
    pytest.param(dict(headers={"timelimit": [1e308, None]}), Failure(DecodeError, "'timelimit'", DECODE), id="timelimit-1e308"),
    pytest.param(dict(headers={"eta": "99999-01-01T00:00:00"}), Failure(DecodeError, "'eta'", DECODE), id="eta-year-99999"),
    pytest.param(dict(content_type="application/x-python-serialize", content_encoding="binary", body=PICKLE_BODY),
                 Failure(ContentDisallowed, "untrusted content", "ContentDisallowed"), id="pickle"),
    pytest.param(dict(content_encoding="rot13"), Failure(DecodeError, "content-encoding", DECODE), id="content-encoding-unknown"),
    pytest.param(dict(body=b'[["\xff\xfe"], {}' + EMBED.encode() + b"]"), Failure(DecodeError, "UTF-8", DECODE), id="body-invalid-utf8"),
    pytest.param(dict(body=nested(DEEP).encode()), Failure(DecodeError, "nesting deeper than", DECODE), id="body-nested-100000-deep"),
    pytest.param(dict(body=b"[[2, 3]]"), Failure(DecodeError, "array of 1 elements", DECODE), id="body-one-element"),
    pytest.param(dict(body=b'[["' + b"x" * (2 * AMQP_MAX) + b'"], {}' + EMBED.encode() + b"]"),
                 Failure(DecodeError, "worker_max_message_size", DECODE), id="body-over-max-message-size"),
]


def amqp_channel(app):
    conn = app.connection_for_write()
    conn.ensure_connection(max_retries=3)
    return conn, conn.default_channel


def amqp_dead_letters(app) -> list:
    """Every message of `fnhost.dlq`, taken off it; none while fnhost has not declared it yet
    (it does so when it first dead-letters, after the FAILURE is stored)."""
    from amqp.exceptions import NotFound

    conn, ch = amqp_channel(app)
    out = []
    try:
        while (m := ch.basic_get("fnhost.dlq", no_ack=True)) is not None:
            out.append(m)
    except NotFound:
        pass
    finally:
        conn.release()
    return out


@AMQP_ONLY
@pytest.mark.parametrize("spec, outcome", AMQP_CATALOGUE)
def test_hostile_amqp_message_has_its_stated_outcome_and_the_host_serves_on(serve, make_functions, celery_app, spec, outcome):
    import uuid

    import amqp

    serve(make_functions(), "-c", "1", "--max-message-size", str(AMQP_MAX))
    task_id = str(uuid.uuid4())
    headers = spec.get("headers", {})
    properties = dict(content_type=spec.get("content_type", "application/json"), content_encoding=spec.get("content_encoding", "utf-8"),
                      correlation_id=task_id, delivery_mode=2, priority=0)
    if headers is not None:
        properties["application_headers"] = amqp_headers(task_id, **headers)
    body = spec.get("body", GOOD_BODY)
    conn, ch = amqp_channel(celery_app)
    try:
        ch.basic_publish(amqp.Message(body, **properties), exchange="", routing_key=QUEUE)
    finally:
        conn.release()

    if isinstance(outcome, Failure):
        with pytest.raises(outcome.exception) as raised:
            AsyncResult(task_id, app=celery_app).get(timeout=RESULT_TIMEOUT)
        assert re.search(outcome.message, str(raised.value)), str(raised.value)
        reason = outcome.dead_letter
    else:
        reason = outcome.reason
    letters = wait_until(lambda: amqp_dead_letters(celery_app), RESULT_TIMEOUT, "a dead letter")
    assert re.search(reason, letters[0].headers["x-fnhost-reason"]), letters[0].headers
    kept = letters[0].body  # py-amqp decodes a body with a known content_encoding
    assert (kept if isinstance(kept, bytes) else kept.encode(letters[0].content_encoding)) == body
    assert celery_app.send_task("math.add", args=[2, 3], queue=QUEUE).get(timeout=RESULT_TIMEOUT) == 5


@AMQP_ONLY
def test_a_100_mb_amqp_body_fails_for_the_producer_unread(serve, make_functions, celery_app):
    import uuid

    import amqp

    serve(make_functions(), "-c", "1")  # the default limit, 64 MiB
    task_id = str(uuid.uuid4())
    body = b'[["' + b"x" * (100 * MiB) + b'"], {}' + EMBED.encode() + b"]"
    conn, ch = amqp_channel(celery_app)
    try:
        ch.basic_publish(amqp.Message(body, content_type="application/json", content_encoding="utf-8", correlation_id=task_id,
                                      delivery_mode=2, application_headers=amqp_headers(task_id)), exchange="", routing_key=QUEUE)
    finally:
        conn.release()
    del body
    with pytest.raises(DecodeError, match=r"more than worker_max_message_size \(67108864 bytes\)"):
        AsyncResult(task_id, app=celery_app).get(timeout=RESULT_TIMEOUT)
    letters = wait_until(lambda: amqp_dead_letters(celery_app), RESULT_TIMEOUT, "a dead letter")
    assert letters[0].headers["id"] == task_id and "worker_max_message_size" in letters[0].headers["x-fnhost-reason"]
    assert celery_app.send_task("math.add", args=[2, 3], queue=QUEUE).get(timeout=RESULT_TIMEOUT) == 5
