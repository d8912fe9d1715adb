"""Native functions (register_native, called through libffi) of Tests/fixtures/plugins/native.c:
every type of the signature language, and the TypeError for every argument that does not fit."""

import pytest

from helpers import RESULT_TIMEOUT

# Broker-independent: runs on Redis and on RabbitMQ (rpc:// and Redis result backends).
pytestmark = pytest.mark.all_brokers


@pytest.fixture
def host(serve, make_functions):
    return serve(make_functions("native", examples=False), "-c", "2")


def run(app, name, args, kwargs=None):
    return app.send_task(name, args=args, kwargs=kwargs or {}, queue=name)


@pytest.mark.parametrize(
    "name, args, expected",
    [
        ("native.i32", [41], 42),
        ("native.i32", [-(2**31)], -(2**31) + 1),
        ("native.i32", [2**31 - 2], 2**31 - 1),
        ("native.u32", [0], 1),
        ("native.u32", [2**32 - 2], 2**32 - 1),
        ("native.i64", [-(2**40)], -(2**41)),
        ("native.i64", [2**62 - 1], 2**63 - 2),
        ("native.u64", [2**64 - 2], 2**64 - 1),
        ("native.u64", [2**63], 2**63 + 1),
        ("native.bool", [True], False),
        ("native.bool", [False], True),
        ("native.str", ["hello, abc"], "HELLO, ABC"),
        ("native.str", [""], ""),
        ("native.strlen", ["hello"], 5),
        ("native.strlen", ["héllo"], 6),  # UTF-8 bytes reach C
        ("native.void", [7], None),
        ("native.nullstr", [], None),
    ],
    ids=lambda v: repr(v) if not isinstance(v, str) else v,
)
def test_native_call_converts_arguments_and_result(host, celery_app, name, args, expected):
    result = run(celery_app, name, args).get(timeout=RESULT_TIMEOUT)
    assert result == expected and type(result) is type(expected)


def test_native_f32_doubles_with_single_precision(host, celery_app):
    assert run(celery_app, "native.f32", [1.5]).get(timeout=RESULT_TIMEOUT) == 3.0
    assert run(celery_app, "native.f32", [0.1]).get(timeout=RESULT_TIMEOUT) == pytest.approx(0.2, rel=1e-6)


def test_native_f64_adds_doubles(host, celery_app):
    result = run(celery_app, "native.f64", [0.25, 0.5]).get(timeout=RESULT_TIMEOUT)
    assert result == 0.75 and type(result) is float


def test_native_f64_accepts_json_integers(host, celery_app):
    assert run(celery_app, "native.f64", [1, 2]).get(timeout=RESULT_TIMEOUT) == 3.0


@pytest.mark.parametrize(
    "name, args, argument",
    [
        ("native.i32", [2**31], 1),
        ("native.i32", [-(2**31) - 1], 1),
        ("native.i32", ["1"], 1),
        ("native.i32", [1.5], 1),
        ("native.i32", [True], 1),
        ("native.i32", [None], 1),
        ("native.u32", [-1], 1),
        ("native.u32", [2**32], 1),
        ("native.i64", [2**63], 1),
        ("native.u64", [-1], 1),
        ("native.u64", [2**64], 1),
        ("native.f32", ["1.0"], 1),
        ("native.f64", [1.0, "2"], 2),
        ("native.f64", [[1.0], 2.0], 1),
        ("native.bool", [1], 1),
        ("native.bool", ["true"], 1),
        ("native.str", [5], 1),
        ("native.str", [{"a": 1}], 1),
        ("native.strlen", [["a"]], 1),
        ("native.void", ["x"], 1),
    ],
    ids=lambda v: repr(v) if not isinstance(v, str) else v,
)
def test_argument_that_does_not_fit_fails_with_type_error_naming_it(host, celery_app, name, args, argument):
    with pytest.raises(TypeError) as info:
        run(celery_app, name, args).get(timeout=RESULT_TIMEOUT)
    assert f"argument {argument}" in str(info.value), str(info.value)


@pytest.mark.parametrize(
    "name, args",
    [("native.i32", []), ("native.i32", [1, 2]), ("native.f64", [1.0]), ("native.nullstr", [1])],
    ids=["i32-none", "i32-two", "f64-one", "nullstr-one"],
)
def test_wrong_argument_count_fails_with_type_error(host, celery_app, name, args):
    with pytest.raises(TypeError):
        run(celery_app, name, args).get(timeout=RESULT_TIMEOUT)


def test_keyword_arguments_to_a_native_function_fail_with_type_error(host, celery_app):
    with pytest.raises(TypeError):
        run(celery_app, "native.i32", [1], {"x": 1}).get(timeout=RESULT_TIMEOUT)


def test_native_host_keeps_serving_after_type_errors(host, celery_app):
    with pytest.raises(TypeError):
        run(celery_app, "native.u32", [-1]).get(timeout=RESULT_TIMEOUT)
    assert run(celery_app, "native.u32", [1]).get(timeout=RESULT_TIMEOUT) == 2
