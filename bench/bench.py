#!/usr/bin/env python3
"""fnhost vs a stock Celery 5.7 worker, side by side on one private redis-server, rounds
alternated (fnhost, celery, fnhost, celery, ...). Prints one table of medians; see bench/README.md.

Measures and prints; it asserts nothing about timings.
"""

import argparse, base64, json, os, platform, shutil, signal, socket, statistics  # noqa: E401
import subprocess, sys, tempfile, threading, time, uuid  # noqa: E401
from contextlib import closing
from pathlib import Path

import celery
import redis
from celery import Celery

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
QUEUE = "math.add"
BROKER_DB, BACKEND_DB = 0, 1
STOP_TIMEOUT = 30    # s between SIGTERM and SIGKILL of the worker's process group
PHASE_TIMEOUT = 300  # s for any one wait (first consumption, drain, first result)

# ---- Settings ----------------------------------------------------------------------------------
def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="rounds; the table shows medians (3)")
    p.add_argument("--n-fnhost", type=int, default=20000, help="messages per fnhost drain (20000)")
    p.add_argument("--n-celery", type=int, default=3000, help="messages per Celery drain (3000)")
    p.add_argument("-c", "--concurrency", type=int, default=2, help="worker processes of both (2)")
    p.add_argument("--calls", type=int, default=500, help="timed round trips per round (500)")
    p.add_argument("--warmup", type=int, default=20, help="untimed round trips first (20)")
    p.add_argument("--fnhost", default=str(REPO / ".build/release/fnhost"), help="the fnhost binary")
    p.add_argument("--functions", default=str(REPO / "functions"), help="fnhost's functions directory")
    args = p.parse_args()
    args.fnhost, args.functions = os.path.abspath(args.fnhost), os.path.abspath(args.functions)  # workers run in bench/
    return args


def log(msg: str):
    print(msg, file=sys.stderr, flush=True)


def wait_for(predicate, what: str, proc=None, interval=0.005, timeout=PHASE_TIMEOUT):
    """Polls until predicate() is truthy; returns time.perf_counter() when it was seen."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"worker exited ({proc.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
    return time.perf_counter()


# ---- The private redis-server (stopped by its PID) ---------------------------------------------
class RedisServer:
    def __init__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.dir = Path(tempfile.mkdtemp(prefix="fnhost-bench-"))
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir),
             "--save", "", "--appendonly", "no", "--logfile", str(self.dir / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.broker, self.backend = self.client(BROKER_DB), self.client(BACKEND_DB)
        wait_for(self._ping, "redis-server", self.proc, 0.05, 15)

    def _ping(self):
        try:
            return self.broker.ping()
        except redis.ConnectionError:
            return False

    def client(self, db):
        return redis.Redis(host="127.0.0.1", port=self.port, db=db)

    def url(self, db):
        return f"redis://127.0.0.1:{self.port}/{db}"

    def flush(self):  # both DBs, before every worker start and every fill
        self.broker.flushdb()
        self.backend.flushdb()

    def cpu_seconds(self):  # utime + stime
        fields = proc_stat(self.proc.pid)
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        stop(self.proc, group=False)
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- Workers: spawned in their own session, stopped by PID, measured through /proc -------------
def spawn(kind: str, args, rs: RedisServer, logfile: Path) -> subprocess.Popen:
    broker, backend, c = rs.url(BROKER_DB), rs.url(BACKEND_DB), str(args.concurrency)
    if kind == "fnhost":
        argv = [args.fnhost, "serve", "--functions", args.functions, "-c", c,
                "--broker", broker, "--backend", backend, "-l", "warning"]
    else:
        argv = [sys.executable, "-m", "celery", "-A", "celery_tasks", "-b", broker, "--result-backend", backend,
                "worker", "-P", "prefork", "-c", c, "-Q", QUEUE, "-l", "warning",
                "--without-heartbeat", "--without-gossip", "--without-mingle"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "FNHOST_"))}
    with open(logfile, "ab") as out:  # cwd bench/: no stray ./fnhost.yml, celery_tasks importable
        return subprocess.Popen(argv, cwd=BENCH, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen, group=True):
    """SIGTERM to the PID; after STOP_TIMEOUT, SIGKILL to its process group (a worker) or itself."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:  # still unreaped, so the group id is still ours
        os.killpg(proc.pid, signal.SIGKILL) if group else proc.kill()
        proc.wait()


def proc_stat(pid) -> list[str]:
    """/proc/PID/stat fields from the state on (field 3 of proc(5) is [0])."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def tree_rss_kb(root: int) -> int:
    """VmRSS of `root` and all its descendants, found by walking /proc."""
    children: dict[int, list[int]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            children.setdefault(int(proc_stat(pid)[1]), []).append(int(pid))
        except OSError:
            continue  # gone meanwhile
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, ()))
        try:
            total += sum(int(line.split()[1]) for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS:"))
        except OSError:
            pass
    return total


def sample_rss(pid: int):
    """Samples the tree RSS of `pid` every 50 ms in a thread; returns stop(), which gives the peak (kB)."""
    peak, done = [0], threading.Event()

    def run():
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss_kb(pid))
            done.wait(0.05)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return lambda: (done.set(), thread.join(), peak[0])[-1]


# ---- Envelopes, exactly as Celery 5.7's producer writes them for send_task("math.add", args=[2, 3], ----
# queue="math.add") (see /work/shared/fixtures/celery-5.7/redis_task_message.raw.json)
def envelope_template(ignore_result: bool) -> str:
    body = json.dumps([[2, 3], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])
    env = {
        "body": base64.b64encode(body.encode()).decode(), "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {"lang": "py", "task": QUEUE, "id": "@ID@", "shadow": None, "eta": None, "expires": None,
                    "group": None, "group_index": None, "retries": 0, "timelimit": [None, None],
                    "root_id": "@ID@", "parent_id": None, "argsrepr": "[2, 3]", "kwargsrepr": "{}",
                    "origin": f"gen{os.getpid()}@{platform.node()}", "ignore_result": True if ignore_result else None,
                    "replaced_task_nesting": 0, "stamped_headers": None, "stamps": {}},
        "properties": {"correlation_id": "@ID@", "reply_to": str(uuid.uuid4()), "delivery_mode": 2,
                       "delivery_info": {"exchange": "", "routing_key": QUEUE}, "priority": 0,
                       "body_encoding": "base64", "delivery_tag": "@TAG@"},
    }
    return json.dumps(env)


def fill(client: redis.Redis, n: int, ignore_result: bool, chunk=1000):
    """LPUSHes n envelopes, each with a fresh task id and delivery tag, pipelined in chunks."""
    tpl = envelope_template(ignore_result)
    for start in range(0, n, chunk):
        msgs = [tpl.replace("@ID@", str(uuid.uuid4())).replace("@TAG@", str(uuid.uuid4()))
                for _ in range(min(chunk, n - start))]
        client.lpush(QUEUE, *msgs)  # one LPUSH per chunk: FIFO order preserved, one round trip
    assert client.llen(QUEUE) == n


# ---- Measurements ------------------------------------------------------------------------------
def drain(kind, args, rs, n, store: bool, logfile):
    """Tasks/s from the first consumption to an empty queue and unacked hash (and, when results are
    stored, all n results). With store, also the peak tree RSS; returns (rate, rss_kb, proc)."""
    rs.flush()
    fill(rs.broker, n, ignore_result=not store)
    proc = spawn(kind, args, rs, logfile)
    stop_sampling = sample_rss(proc.pid) if store else None
    r = rs.broker

    def done():
        queued, unacked = r.pipeline(transaction=False).llen(QUEUE).hlen("unacked").execute()
        return queued == 0 and unacked == 0 and (not store or rs.backend.dbsize() >= n)

    t0 = wait_for(lambda: r.llen(QUEUE) < n, f"{kind} to consume", proc, interval=0.002)
    t1 = wait_for(done, f"{kind} to drain {n} messages", proc)
    rss = stop_sampling() if store else None
    if not store and rs.backend.dbsize():
        log(f"  note: {kind} stored {rs.backend.dbsize()} results though ignore_result was set")
    return n / (t1 - t0), rss, proc


def producer(rs):
    """A plain Celery 5.7 producer (a fresh one each time: flushing the DB drops the queue bindings
    an older producer believes it declared)."""
    return closing(Celery("bench-producer", broker=rs.url(BROKER_DB), backend=rs.url(BACKEND_DB), set_as_current=False))


def round_trips(rs, calls: int, warmup: int):
    """p50 and p99 in ms of send_task(...).get() against a running worker."""
    times = []
    with producer(rs) as app:
        for i in range(warmup + calls):
            t = time.perf_counter()
            app.send_task(QUEUE, args=[2, 3], queue=QUEUE).get(timeout=60)
            times.append((time.perf_counter() - t) * 1000)
    times = sorted(times[warmup:])
    return times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]


def start_to_first(kind, args, rs, logfile):
    """ms from spawning the worker to the result of a task sent just before."""
    rs.flush()
    with producer(rs) as app:
        result = app.send_task(QUEUE, args=[2, 3], queue=QUEUE)
        t0 = time.perf_counter()
        proc = spawn(kind, args, rs, logfile)
        try:
            result.get(timeout=PHASE_TIMEOUT)
            return (time.perf_counter() - t0) * 1000
        finally:
            stop(proc)


def broker_ceiling(rs, n, batch=256):
    """Messages/s at which Redis alone runs one task's commands (RPOP; ZADD unacked_index + HSET
    unacked; ZREM + HDEL), pipelined `batch` messages deep with redis-py; also redis-server's CPU
    share of one core over that time (near 100%: Redis is the limit; lower: the Python client is)."""
    rs.flush()
    fill(rs.broker, n, ignore_result=True)
    r = rs.client(BROKER_DB)
    cpu0, t0 = rs.cpu_seconds(), time.perf_counter()
    while True:
        p = r.pipeline(transaction=False)
        for _ in range(batch):
            p.rpop(QUEUE)
        msgs = [m for m in p.execute() if m is not None]
        if not msgs:
            break
        tags = [m[-39:-3] for m in msgs]  # the envelope ends with "delivery_tag": "<uuid>"}}
        now = time.time()
        p = r.pipeline(transaction=False)
        for tag, m in zip(tags, msgs):
            p.zadd("unacked_index", {tag: now}).hset("unacked", tag, b"[" + m + b', "", "' + QUEUE.encode() + b'"]')
        p.execute()
        p = r.pipeline(transaction=False)
        for tag in tags:
            p.zrem("unacked_index", tag).hdel("unacked", tag)
        p.execute()
    elapsed = time.perf_counter() - t0
    assert r.hlen("unacked") == 0 and r.zcard("unacked_index") == 0, "ceiling: a tag was misread"
    return n / elapsed, (rs.cpu_seconds() - cpu0) / elapsed


def measure_worker(kind, args, rs, logfile):
    n = args.n_fnhost if kind == "fnhost" else args.n_celery
    m = {}
    m["drain_ignored"], _, proc = drain(kind, args, rs, n, False, logfile)
    stop(proc)
    m["drain_stored"], m["rss_mb"], proc = drain(kind, args, rs, n, True, logfile)
    m["rss_mb"] /= 1024
    try:
        m["rtt_p50"], m["rtt_p99"] = round_trips(rs, args.calls, args.warmup)
    finally:
        stop(proc)
    m["start_ms"] = start_to_first(kind, args, rs, logfile)
    return m


# ---- Rounds and the table ----------------------------------------------------------------------

ROWS = [  # key, label, format
    ("drain_ignored", "drain, results ignored (tasks/s)", "{:,.0f}"),
    ("drain_stored", "drain, results stored (tasks/s)", "{:,.0f}"),
    ("rtt_p50", "round trip p50 (ms)", "{:.2f}"),
    ("rtt_p99", "round trip p99 (ms)", "{:.2f}"),
    ("rss_mb", "peak RSS, worker + children (MB)", "{:.1f}"),
    ("start_ms", "start to first task done (ms)", "{:.0f}"),
    ("share", "drain ignored / broker ceiling", "{:.1%}"),
]


def main():
    args = parse_args()
    if not os.access(args.fnhost, os.X_OK):
        sys.exit(f"{args.fnhost} is not executable: swift build -c release --product fnhost")
    if not (Path(args.functions) / "libmath.so").is_file():
        sys.exit(f"{args.functions}/libmath.so is missing: make functions")
    rs = RedisServer()
    logs = Path(tempfile.mkdtemp(prefix="fnhost-bench-logs-"))
    results = {"fnhost": [], "celery": []}
    ceilings, redis_cpu = [], []
    try:
        for i in range(1, args.rounds + 1):
            ceiling, cpu = broker_ceiling(rs, args.n_fnhost)
            ceilings.append(ceiling), redis_cpu.append(cpu)
            log(f"round {i}/{args.rounds}: broker ceiling {ceiling:,.0f} msg/s (redis-server CPU {cpu:.0%})")
            for kind in ("fnhost", "celery"):
                m = measure_worker(kind, args, rs, logs / f"{kind}.log")
                m["share"] = m["drain_ignored"] / ceiling
                results[kind].append(m)
                log(f"  {kind}: " + ", ".join(f"{k} {v:,.2f}" for k, v in m.items()))
        redis_version = rs.broker.info("server")["redis_version"]
    except Exception:
        log(f"worker logs: {logs}")
        raise
    finally:
        rs.stop()
    shutil.rmtree(logs, ignore_errors=True)

    med = {k: {key: statistics.median(m[key] for m in ms) for key, _, _ in ROWS} for k, ms in results.items()}
    table = [("metric", "fnhost", "celery", "fnhost/celery")]
    for key, label, fmt in ROWS:
        f, c = med["fnhost"][key], med["celery"][key]
        table.append((label, fmt.format(f), fmt.format(c), f"{f / c:.2f}x" if c else "-"))
    table.append(("broker ceiling (msg/s)", f"{statistics.median(ceilings):,.0f}", "", ""))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    table.insert(1, tuple("-" * w for w in widths))
    print()
    for row in table:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))
    print(f"\nmedians of {args.rounds} rounds, alternated fnhost/celery; nproc {os.cpu_count()}, "
          f"redis-server {redis_version}, celery {celery.__version__}, redis-py {redis.__version__}, "
          f"python {platform.python_version()}")
    print(f"N: fnhost {args.n_fnhost}, celery {args.n_celery}, ceiling {args.n_fnhost}; concurrency "
          f"{args.concurrency}; round trips {args.calls} after {args.warmup} warm-up; redis-server CPU "
          f"during the ceiling {statistics.median(redis_cpu):.0%} of one core (below 100%: the ceiling is "
          f"client-bound; Redis-bound estimate {statistics.median(c / u for c, u in zip(ceilings, redis_cpu)):,.0f} msg/s)")


if __name__ == "__main__":
    main()
