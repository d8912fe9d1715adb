"""Trust: a plugin or manifest that another user could change is refused with the path and the
reason, while everything else keeps serving; `--allow-untrusted-plugins` loads it, loudly."""

import re

import pytest
from celery.exceptions import NotRegistered

from helpers import RESULT_TIMEOUT


@pytest.fixture
def functions(make_functions):
    d = make_functions("native")
    (d / "libnative.so").chmod(0o666)  # writable by everyone
    return d


def test_world_writable_plugin_is_refused_and_the_others_serve(serve, functions, celery_app):
    host = serve(functions, "-Q", "celery")
    line = host.wait_for_log(r"plugin libnative\.so failed to load: (.*)")
    path = re.escape(str(functions / "libnative.so"))
    assert re.search(rf"untrusted: the file {path} is writable by its group and other users \(mode 0666\)", line.group(1)), line.string
    with pytest.raises(NotRegistered):
        celery_app.send_task("native.i64", args=[21]).get(timeout=RESULT_TIMEOUT)  # via the shared queue
    assert celery_app.send_task("math.add", args=[2, 3], queue="math.add").get(timeout=RESULT_TIMEOUT) == 5


def test_fnhost_list_says_why_a_plugin_is_refused(functions, fnhost_cli):
    out = fnhost_cli("list", "--functions", functions)
    assert out.returncode == 0, out.stderr
    assert re.search(rf"^failed: libnative\.so: untrusted: the file {re.escape(str(functions / 'libnative.so'))} is writable", out.stdout, re.M), out.stdout
    assert not [line for line in out.stdout.splitlines() if line.startswith("native.")]


def test_writable_functions_directory_refuses_its_plugins_and_manifests(make_functions, fnhost_cli):
    d = make_functions()
    (d / "libm.fnhost.yml").write_text('library: libm.so.6\ntasks:\n  m.cos: { symbol: cos, signature: "f64(f64)" }\n')
    (d / "libm.fnhost.yml").chmod(0o644)
    d.chmod(0o777)
    out = fnhost_cli("list", "--functions", d)
    for name in ("libmath.so", "libtext.so", "libm.fnhost.yml"):
        assert re.search(rf"^failed: {re.escape(name)}: untrusted: the directory {re.escape(str(d))} is writable by its group and other users \(mode 0777\)", out.stdout, re.M), out.stdout


def test_group_writable_manifest_is_refused(make_functions, fnhost_cli):
    d = make_functions(examples=False)
    (d / "libm.fnhost.yml").write_text('library: libm.so.6\ntasks:\n  m.cos: { symbol: cos, signature: "f64(f64)" }\n')
    (d / "libm.fnhost.yml").chmod(0o664)
    out = fnhost_cli("list", "--functions", d)
    assert re.search(r"^failed: libm\.fnhost\.yml: untrusted: the file .* is writable by its group \(mode 0664\)", out.stdout, re.M), out.stdout


def test_allow_untrusted_plugins_loads_them_with_a_loud_warning(serve, functions, celery_app):
    host = serve(functions, "--allow-untrusted-plugins")
    host.wait_for_log(r"warning.*--allow-untrusted-plugins: .*never use this outside development")
    assert celery_app.send_task("native.i64", args=[21], queue="native.i64").get(timeout=RESULT_TIMEOUT) == 42
    assert host.stderr.search(r"plugin libnative\.so failed") is None
