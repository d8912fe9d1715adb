#!/usr/bin/env python3
"""Captures what a real Celery 5.7 producer puts on the wire for each canvas shape, as golden
fixtures for the signature decoding tests (Tests/CeleryProtocolTests/Fixtures/canvas_*.raw.jsonl).

Run with the interop venv:  .venv/bin/python scripts/capture-canvas-fixtures.py
It starts a private redis-server on a free port (stopped by its PID), applies each canvas with
no worker running, and pops every message raw from the broker lists, oldest first, one
envelope per line, byte for byte as kombu wrote it. Keys the producer wrote to the result
backend (a chord's `.s` size) go to canvas_<shape>.backend.json.
"""

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
from celery import Celery, chain, chord, group

OUT = Path(__file__).resolve().parents[1] / "Tests" / "CeleryProtocolTests" / "Fixtures"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    workdir = Path(tempfile.mkdtemp(prefix="fnhost-capture-"))
    port = free_port()
    proc = subprocess.Popen([shutil.which("redis-server"), "--bind", "127.0.0.1", "--port", str(port),
                             "--dir", str(workdir), "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        broker = redis.Redis(port=port, db=0)
        backend = redis.Redis(port=port, db=1)
        for _ in range(200):
            try:
                broker.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        app = Celery("capture", broker=f"redis://127.0.0.1:{port}/0", backend=f"redis://127.0.0.1:{port}/1",
                     set_as_current=False)
        s = app.signature
        add = lambda *a: s("math.add", args=a)
        mul = lambda *a: s("math.mul", args=a)
        xsum = lambda *a: s("math.xsum", args=a)
        shapes = {
            "chain3": lambda: chain(add(1, 2).set(queue="math.add"), mul(3), mul(2)).apply_async(),
            "chain_immutable": lambda: chain(add(1, 2).set(queue="math.add"), s("math.add", args=(5, 5), immutable=True)).apply_async(),
            "link_one": lambda: add(2, 2).set(queue="math.add").apply_async(link=mul(10)),
            "link_two": lambda: add(2, 2).set(queue="math.add").apply_async(link=[mul(2), mul(3)]),
            "link_error": lambda: s("math.div", args=(1, 0)).set(queue="math.div").apply_async(
                link_error=s("errors.record", args=("extra",))),
            "group3": lambda: group(add(i, i).set(queue="math.add") for i in range(3)).apply_async(),
            "chord3": lambda: chord([add(i, i).set(queue="math.add") for i in range(3)], xsum()).apply_async(),
            "chain_group_task": lambda: chain(add(1, 1).set(queue="math.add"), group(mul(2), mul(3)), xsum()).apply_async(),
            "chain_group": lambda: chain(add(1, 1).set(queue="math.add"), group(mul(2), mul(3))).apply_async(),
            "group_of_chains": lambda: group(chain(add(1, 1).set(queue="math.add"), mul(5)), add(2, 2).set(queue="math.add")).apply_async(),
            "chord_chain_body": lambda: chord([add(1, 1).set(queue="math.add"), add(2, 2).set(queue="math.add")],
                                              chain(xsum(), mul(2))).apply_async(),
            "chain_chord_task": lambda: chain(add(1, 1).set(queue="math.add"),
                                              chord([mul(2), mul(3)], xsum()), mul(10)).apply_async(),
        }
        for name, apply in shapes.items():
            broker.flushdb()
            backend.flushdb()
            apply()
            lines = []
            for key in sorted(k for k in broker.keys("*") if broker.type(k) == b"list"):
                while (raw := broker.rpop(key)) is not None:
                    lines.append(raw)
            (OUT / f"canvas_{name}.raw.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
            keys = {}
            for key in sorted(backend.keys("*")):
                kind = backend.type(key).decode()
                value = backend.get(key).decode() if kind == "string" else None
                keys[key.decode()] = {"type": kind, "value": value, "ttl": backend.ttl(key)}
            if keys:
                (OUT / f"canvas_{name}.backend.json").write_text(json.dumps(keys, indent=1) + "\n")
            print(f"{name}: {len(lines)} message(s), backend keys {sorted(keys)}")
        app.close()
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
