#!/usr/bin/env bash
# Checks deploy/: the Prometheus rules with promtool (from Debian's prometheus package, unpacked
# under .build/promtool, never installed as a service), and that every metric name the rules,
# the HPA and the dashboard use is defined in MetricNames.swift.
set -euo pipefail
cd "$(dirname "$0")/.."
promtool=$(command -v promtool || true)
if [ -z "$promtool" ]; then
  promtool=.build/promtool/usr/bin/promtool
  if [ ! -x "$promtool" ]; then
    mkdir -p .build/promtool
    (cd .build/promtool && apt-get download prometheus >/dev/null && dpkg -x prometheus_*.deb . && rm -f prometheus_*.deb)
  fi
fi
"$promtool" check rules deploy/prometheus/rules.yml
"$promtool" test rules deploy/prometheus/rules_test.yml
python3 -c 'import json; json.load(open("deploy/grafana/fnhost-dashboard.json"))'
defined=$(grep -o 'MetricFamily("[a-z_]*"' Sources/FnHostObservability/Metrics/MetricNames.swift | cut -d'"' -f2 | sort -u)
used=$(grep -ohE '\b(celery|fnhost)_[a-z_]+' deploy/prometheus/rules.yml deploy/kubernetes/hpa.yaml deploy/grafana/fnhost-dashboard.json \
  | sed -E 's/_(bucket|sum|count)$//' | grep -v '^fnhost_celery$' | sort -u)
missing=$(comm -13 <(echo "$defined") <(echo "$used") || true)
if [ -n "$missing" ]; then
  echo "metrics used in deploy/ but not defined in MetricNames.swift:" >&2
  echo "$missing" >&2
  exit 1
fi
echo "deploy/: rules valid, rule tests pass, every metric used is defined"
