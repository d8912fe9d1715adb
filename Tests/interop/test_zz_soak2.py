import os, time, urllib.request
from celery import Celery
from helpers import RESULT_TIMEOUT, wait_until
from test_faults import durable_redis, free_port  # noqa: F401
from test_reload import version_build, install, wait_for_reloads  # noqa: F401

def stat(pid):
    st = open(f"/proc/{pid}/status").read().splitlines()
    g = lambda k: [l.split()[1] for l in st if l.startswith(k)][0]
    return dict(maps=sum(1 for _ in open(f"/proc/{pid}/maps")), fds=len(os.listdir(f"/proc/{pid}/fd")), threads=int(g("Threads")), rss_kb=int(g("VmRSS")))

def test_reloads(serve, make_functions, version_build, celery_app):
    d = make_functions()
    install(version_build(1), d / "libversion.so")
    host = serve(d, "-c", "2")
    get = lambda: celery_app.send_task("version.get", queue="version.get").get(timeout=RESULT_TIMEOUT)
    get()
    print("\nreload start", stat(host.pid))
    for i in range(30):
        install(version_build(10 + i % 3), d / "libversion.so", "rename")
        wait_for_reloads(host, i + 1)
        get()
        if i % 10 == 9: print("reload", i, stat(host.pid))
    time.sleep(12)
    print("reload end", stat(host.pid))

def test_metrics_and_control(serve, make_functions, celery_app):
    port = free_port()
    host = serve(make_functions(), "-c", "2", "--metrics-port", str(port))
    print("\nmetrics start", stat(host.pid))
    for i in range(1000):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    print("metrics end", stat(host.pid))
    for i in range(100):
        celery_app.control.inspect(timeout=1).ping()
    print("control end", stat(host.pid))

def test_redis_restarts(serve, make_functions, durable_redis):
    b, r = durable_redis.url(0), durable_redis.url(1)
    app = Celery("s", broker=b, backend=r, set_as_current=False)
    host = serve(make_functions(), "-c", "2", "--broker", b, "--backend", r, urls=False)
    assert app.send_task("math.add", args=[1, 1], queue="math.add").get(timeout=RESULT_TIMEOUT) == 2
    print("\nrestart start", stat(host.pid))
    for i in range(10):
        durable_redis.kill(); time.sleep(1); durable_redis.start()
        app.close(); app = Celery("s", broker=b, backend=r, set_as_current=False)
        assert app.send_task("math.add", args=[i, 1], queue="math.add").get(timeout=60) == i + 1
        print("restart", i, stat(host.pid))
    app.close()
