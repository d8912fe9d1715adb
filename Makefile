# fnhost: `make serve` runs it, `make test` tests it; both install what they need first.
SWIFT    ?= swift
CC       ?= cc
CONFIG   ?= debug
BUILD    := .build/$(CONFIG)
FNHOST   := $(BUILD)/fnhost
FUNCTIONS ?= functions
VENV     := .venv
PYTHON   := $(VENV)/bin/python
BROKER   ?= redis://127.0.0.1:6379/0
BACKEND  ?= redis://127.0.0.1:6379/1

.PHONY: all deps build functions serve test unit-test interop-test fuzz venv lint clean bench bench-quick bench-instructions release deploy-check

all: build functions

# Debian packages the build, the examples and the tests need (installed only when missing).
deps:
	@scripts/install-deps.sh

# fnhost and fnhost-worker, the small executable its worker processes run (found next to fnhost).
build: deps
	$(SWIFT) build -c $(CONFIG) --product fnhost
	$(SWIFT) build -c $(CONFIG) --product fnhost-worker

# The example plugins, compiled into functions/ (never committed).
functions: build
	$(CC) -O2 -Wall -Werror -shared -fPIC $$($(FNHOST) cflags) -o $(FUNCTIONS)/libmath.so.tmp functions/src/math/math.c
	mv -f $(FUNCTIONS)/libmath.so.tmp $(FUNCTIONS)/libmath.so
	$(CC) -O2 -Wall -Werror -shared -fPIC $$($(FNHOST) cflags) -o $(FUNCTIONS)/libimages.so.tmp functions/src/images/images.c -lpng
	mv -f $(FUNCTIONS)/libimages.so.tmp $(FUNCTIONS)/libimages.so
	$(SWIFT) build -c $(CONFIG) --product text
	cp $(BUILD)/libtext.so $(FUNCTIONS)/libtext.so.tmp && mv -f $(FUNCTIONS)/libtext.so.tmp $(FUNCTIONS)/libtext.so

serve: functions
	@scripts/ensure-redis.sh 127.0.0.1 6379
	$(FNHOST) serve --functions $(FUNCTIONS) --broker $(BROKER) --backend $(BACKEND)

venv: $(VENV)/.installed
$(VENV)/.installed: Tests/interop/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r Tests/interop/requirements.txt
	touch $@

# SWIFT_BACKTRACE=enable=no: a crashing test fails at once instead of waiting on the backtracer.
unit-test: deps
	SWIFT_BACKTRACE=enable=no $(SWIFT) test

interop-test: functions venv
	FNHOST=$(abspath $(FNHOST)) $(PYTHON) -m pytest -q Tests/interop $(PYTEST_ARGS)

# libFuzzer targets of the decoders (Fuzz/README.md), built in .build/fuzz, FUZZ_SECONDS each.
FUZZ_SECONDS ?= 20
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) SWIFT=$(SWIFT) scripts/fuzz.sh

# Every test: Swift unit tests, the interop suite against real Celery and redis-server, then
# a bounded run of every fuzz target.
test: unit-test interop-test fuzz

# fnhost and fnhost-worker, release build (what the benches measure).
release: deps
	$(MAKE) build CONFIG=release

# fnhost (release) against a stock Celery 5.7 worker on a private redis-server; see bench/README.md.
# BENCH_ARGS passes options, e.g. make bench BENCH_ARGS="--rounds 5 -c 4".
bench: functions venv release
	$(PYTHON) bench/bench.py --fnhost .build/release/fnhost --functions $(FUNCTIONS) $(BENCH_ARGS)

# The headline ratios in under 2 minutes (after the build): 1 round on both brokers, no scaling table.
# Run it before and after a change, in the same session, to compare.
bench-quick: functions venv release
	$(PYTHON) bench/bench.py --fnhost .build/release/fnhost --functions $(FUNCTIONS) --quick $(BENCH_ARGS)

# Instructions the host executes per no-op task (valgrind's callgrind): stable on a noisy machine,
# so a change can be judged from one run. BENCH_BUILDS compares several fnhost executables.
BENCH_BUILDS ?= .build/release/fnhost
bench-instructions: functions venv release
	@scripts/install-deps.sh valgrind
	cd bench && ../$(PYTHON) instructions.py $(abspath $(BENCH_BUILDS)) --functions $(abspath $(FUNCTIONS))

# deploy/: promtool checks and tests the alert rules; every metric used must be in MetricNames.swift.
deploy-check:
	@scripts/check-deploy.sh

clean:
	rm -rf .build $(FUNCTIONS)/*.so
