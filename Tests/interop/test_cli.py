"""The command line: `fnhost call`, `list`, `routes`, `cflags`."""

import ast
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from helpers import RESULT_TIMEOUT, clean_env


@pytest.fixture
def examples(make_functions):
    return make_functions()


def test_call_prints_json_result_and_exits_zero(fnhost_cli, examples):
    out = fnhost_cli("call", "--functions", examples, "math.add", "2", "3")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "5"


def test_call_without_fnhost_worker_beside_fnhost_runs_the_worker_subcommand(fnhost_without_worker, examples):
    # `swift build --product fnhost` alone builds no fnhost-worker: the host then starts its
    # workers as `fnhost worker`, the same loop inside the full executable.
    out = subprocess.run([fnhost_without_worker, "call", "--functions", str(examples), "math.add", "2", "3"],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, env=clean_env())
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "5"


def test_call_takes_each_argument_as_json(fnhost_cli, examples):
    out = fnhost_cli("call", "--functions", examples, "text.upper", json.dumps("héllo wörld"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == "HÉLLO WÖRLD"
    out = fnhost_cli("call", "--functions", examples, "math.mul", "6", "7")
    assert (out.returncode, json.loads(out.stdout)) == (0, 42), out.stderr


def test_call_prints_dict_result_as_json(fnhost_cli, examples):
    out = fnhost_cli("call", "--functions", examples, "math.slow", "0")
    assert out.returncode == 0, out.stderr
    assert set(json.loads(out.stdout)) == {"pid", "start", "end"}


def test_call_failure_prints_exception_type_and_message_and_exits_non_zero(fnhost_cli, examples):
    out = fnhost_cli("call", "--functions", examples, "math.div", "1", "0")
    assert out.returncode != 0
    assert re.search(r"^ZeroDivisionError: ", out.stderr, re.M), out.stderr
    assert out.stdout.strip() == ""


def test_call_of_unknown_function_fails(fnhost_cli, examples):
    out = fnhost_cli("call", "--functions", examples, "math.nope", "1")
    assert out.returncode != 0
    assert "math.nope" in out.stderr


def test_call_of_crashing_function_reports_worker_lost(fnhost_cli, make_functions):
    out = fnhost_cli("call", "--functions", make_functions("crash"), "crash.segv")
    assert out.returncode != 0
    assert re.search(r"^WorkerLostError: ", out.stderr, re.M), out.stderr


def test_call_native_type_error_names_the_argument(fnhost_cli, make_functions):
    out = fnhost_cli("call", "--functions", make_functions("native", examples=False), "native.u32", "-1")
    assert out.returncode != 0
    assert re.search(r"^TypeError: .*argument 1", out.stderr, re.M), out.stderr


def listing(fnhost_cli, functions) -> dict[str, str]:
    """function name -> its `fnhost list` line, whitespace collapsed."""
    out = fnhost_cli("list", "--functions", functions)
    assert out.returncode == 0, out.stderr
    rows = {}
    for line in out.stdout.splitlines():
        words = line.split()
        if words:
            rows[words[0]] = " ".join(words)
    return rows


def test_list_shows_name_queue_kind_and_plugin_file(fnhost_cli, examples):
    rows = listing(fnhost_cli, examples)
    expected = {
        "math.add": ("task", "libmath.so"),
        "math.mul": ("native i64(i64,i64)", "libmath.so"),
        "math.div": ("task", "libmath.so"),
        "math.slow": ("task", "libmath.so"),
        "text.upper": ("task", "libtext.so"),
        "text.wordcount": ("task", "libtext.so"),
        "text.require_nonempty": ("task", "libtext.so"),
        "text.echo_context": ("task", "libtext.so"),
    }
    for name, (kind, file_name) in expected.items():
        assert name in rows, f"{name} missing from fnhost list: {rows}"
        row = rows[name]
        assert kind in row and file_name in row, row
        assert name in row.split(maxsplit=1)[1], f"queue should be {name}: {row}"


def test_list_shows_native_signatures_and_custom_queues(fnhost_cli, make_functions):
    rows = listing(fnhost_cli, make_functions("native", "options", examples=False))
    assert "native f64(f64,f64)" in rows["native.f64"]
    assert "native str(str)" in rows["native.str"]
    assert "native void(i64)" in rows["native.void"]
    assert "native str()" in rows["native.nullstr"]
    assert "custom-q" in rows["opts.queue"]


def test_routes_is_a_celery_task_routes_literal(fnhost_cli, make_functions):
    out = fnhost_cli("routes", "--functions", make_functions("options"))
    assert out.returncode == 0, out.stderr
    routes = ast.literal_eval(out.stdout.strip())
    assert routes["math.add"] == {"queue": "math.add"}
    assert routes["text.upper"] == {"queue": "text.upper"}
    assert routes["opts.queue"] == {"queue": "custom-q"}
    assert "opts.badkey" not in routes
    assert all(set(route) == {"queue"} for route in routes.values()), routes


def test_routes_output_routes_a_python_producer_to_the_host(fnhost_cli, make_functions, serve, celery_app):
    functions = make_functions("options")
    routes = ast.literal_eval(fnhost_cli("routes", "--functions", functions).stdout.strip())
    celery_app.conf.task_routes = routes
    serve(functions)
    assert celery_app.send_task("math.add", args=[2, 3]).get(timeout=RESULT_TIMEOUT) == 5
    r = celery_app.send_task("opts.queue")
    r.get(timeout=RESULT_TIMEOUT)
    assert r.state == "SUCCESS"


def test_cflags_points_at_a_directory_with_fnhost_h(fnhost_cli, tmp_path):
    out = fnhost_cli("cflags")
    assert out.returncode == 0, out.stderr
    flags = out.stdout.split()
    includes = [f[2:] for f in flags if f.startswith("-I")]
    assert includes and any((Path(d) / "fnhost.h").is_file() for d in includes), out.stdout
    src = tmp_path / "probe.c"
    src.write_text('#include "fnhost.h"\n_Static_assert(FNHOST_ABI_VERSION == 1, "abi");\n')
    cc = subprocess.run([os.environ.get("CC", "cc"), "-fsyntax-only", *flags, str(src)], capture_output=True, text=True)
    assert cc.returncode == 0, cc.stderr
