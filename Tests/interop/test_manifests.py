"""Manifests (`NAME.fnhost.yml`, plugin-abi.md): a plain C library that knows nothing of fnhost
serves its functions as tasks through libffi, called from a real Celery producer."""

import math
import re
import shutil

import pytest
from celery.exceptions import NotRegistered

from helpers import RESULT_TIMEOUT

LIBM = """\
library: libm.so.6          # found by the dynamic loader, by name
tasks:
  libm.pow: { symbol: pow, signature: "f64(f64,f64)", queue: libm }
  libm.sqrt: { symbol: sqrt, signature: "f64(f64)", queue: libm }
  libm.floor: { symbol: floor, signature: "f64(f64)" }
"""

LOCAL = """\
library: lib/libnoinit.so   # relative to the manifest
tasks:
  local.add: { symbol: noinit_add, signature: "i32(i32,i32)" }
"""

BAD = """\
library: libm.so.6
tasks:
  bad.ok: { symbol: cos, signature: "f64(f64)" }
  bad.pow: { symbol: pow, signature: "f64(f64,double)" }
"""

NOSYMBOL = """\
library: libm.so.6
tasks:
  nosym.x: { symbol: no_such_function_here, signature: "f64(f64)" }
"""


def write(path, text):
    path.write_text(text)
    path.chmod(0o644)


@pytest.fixture
def functions(make_functions, fixture_plugin):
    d = make_functions()
    write(d / "libm.fnhost.yml", LIBM)
    (d / "lib").mkdir(mode=0o755)
    shutil.copyfile(fixture_plugin("noinit"), d / "lib" / "libnoinit.so")
    (d / "lib" / "libnoinit.so").chmod(0o644)
    write(d / "local.fnhost.yml", LOCAL)
    write(d / "bad.fnhost.yml", BAD)
    write(d / "nosym.fnhost.yml", NOSYMBOL)
    return d


@pytest.fixture
def host(serve, functions):
    return serve(functions, "-Q", "celery")


@pytest.mark.all_brokers
def test_libm_functions_are_tasks_for_a_celery_producer(host, celery_app):
    assert celery_app.send_task("libm.pow", args=[2, 10], queue="libm").get(timeout=RESULT_TIMEOUT) == 1024.0
    assert celery_app.send_task("libm.sqrt", args=[2], queue="libm").get(timeout=RESULT_TIMEOUT) == math.sqrt(2)
    assert celery_app.send_task("libm.floor", args=[-2.5], queue="libm.floor").get(timeout=RESULT_TIMEOUT) == -3.0


def test_manifest_arguments_are_checked_by_the_signature(host, celery_app):
    with pytest.raises(TypeError, match=r"argument 1 \(f64\) must be a number"):
        celery_app.send_task("libm.sqrt", args=["four"], queue="libm").get(timeout=RESULT_TIMEOUT)
    with pytest.raises(TypeError, match=r"takes 2 positional arguments"):
        celery_app.send_task("libm.pow", args=[2], queue="libm").get(timeout=RESULT_TIMEOUT)


def test_library_path_is_relative_to_the_manifest(host, celery_app):
    assert celery_app.send_task("local.add", args=[40, 2], queue="local.add").get(timeout=RESULT_TIMEOUT) == 42


def test_bad_manifest_is_reported_with_file_line_and_problem(host, celery_app):
    line = host.wait_for_log(r"plugin bad\.fnhost\.yml failed to load: (.*)")
    assert re.search(r'bad\.fnhost\.yml:4: task bad\.pow: signature .*unknown type "double"', line.group(1)), line.string
    # Nothing of a refused manifest is served, and everything else is.
    with pytest.raises(NotRegistered):
        celery_app.send_task("bad.ok", args=[0]).get(timeout=RESULT_TIMEOUT)
    assert celery_app.send_task("math.add", args=[1, 2], queue="math.add").get(timeout=RESULT_TIMEOUT) == 3


def test_missing_symbol_is_reported_with_file_and_line(host):
    line = host.wait_for_log(r"plugin nosym\.fnhost\.yml failed to load: (.*)")
    assert "nosym.fnhost.yml:3: task nosym.x: no symbol no_such_function_here in libm.so.6" in line.group(1), line.string


def test_fnhost_list_shows_manifest_functions_and_bad_manifests(functions, fnhost_cli):
    out = fnhost_cli("list", "--functions", functions)
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line for line in out.stdout.splitlines() if line and not line.startswith(("NAME", "failed:"))}
    assert re.search(r"libm\.pow\s+libm\s+native f64\(f64,f64\)\s+libm\.fnhost\.yml", rows["libm.pow"]), out.stdout
    assert "local.fnhost.yml" in rows["local.add"]
    assert re.search(r"^failed: bad\.fnhost\.yml: bad\.fnhost\.yml:4: ", out.stdout, re.M), out.stdout
