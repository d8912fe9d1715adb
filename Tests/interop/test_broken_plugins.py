"""Plugins that cannot load are reported by file name and reason, in the serve log and in
`fnhost list`, while every good plugin keeps serving."""

import random
import re

import pytest
from celery.exceptions import NotRegistered

from helpers import RESULT_TIMEOUT

BAD_ELF = random.Random(1).randbytes(8192)

# file name -> regex the reason must match
BROKEN = {
    "libbadelf.so": r".+",
    "libnoinit.so": r"fnhost_plugin_init",
    "libinitfail.so": r"database not reachable",
    "libzz_dup.so": r"math\.add",
}


@pytest.fixture
def functions(make_functions):
    return make_functions(
        "noinit", "initfail", "dup",
        rename={"dup": "libzz_dup.so"},
        files={"libbadelf.so": BAD_ELF},
    )


@pytest.fixture
def host(serve, functions):
    return serve(functions, "-Q", "celery")


@pytest.mark.parametrize("file_name", BROKEN)
def test_broken_plugin_is_logged_with_file_name_and_reason(host, file_name):
    line = host.wait_for_log(rf"plugin {re.escape(file_name)} failed to load: ")
    reason = line.string[line.end():]
    assert re.search(BROKEN[file_name], reason), line.string


def test_good_plugins_keep_serving_beside_broken_ones(host, celery_app):
    assert celery_app.send_task("math.add", args=[2, 3], queue="math.add").get(timeout=RESULT_TIMEOUT) == 5
    assert celery_app.send_task("text.upper", args=["ok"], queue="text.upper").get(timeout=RESULT_TIMEOUT) == "OK"
    assert host.stderr.search(r"plugin libmath\.so failed") is None
    assert host.stderr.search(r"plugin libtext\.so failed") is None


def test_duplicate_plugin_is_refused_as_a_whole(host, celery_app):
    host.wait_for_log(r"plugin libzz_dup\.so failed to load: ")
    with pytest.raises(NotRegistered):
        celery_app.send_task("dup.only", args=[]).get(timeout=RESULT_TIMEOUT)  # via the shared queue
    assert celery_app.send_task("math.add", args=[20, 22]).get(timeout=RESULT_TIMEOUT) == 42


def test_fnhost_list_reports_broken_plugins_and_lists_good_functions(functions, fnhost_cli):
    out = fnhost_cli("list", "--functions", functions)
    lines = out.stdout.splitlines()
    for file_name, reason in BROKEN.items():
        matching = [line for line in lines if file_name in line]
        assert matching, f"{file_name} not reported:\n{out.stdout}\n{out.stderr}"
        assert any(re.search(reason, line) for line in matching), f"{file_name}: reason missing:\n{out.stdout}"
    (add,) = [line for line in lines if line.split()[:1] == ["math.add"]]
    assert "libmath.so" in add and "libzz_dup.so" not in add
    assert not [line for line in lines if line.split()[:1] == ["dup.only"]]
