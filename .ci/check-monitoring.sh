#!/usr/bin/env bash
# check-monitoring.sh checks the example Prometheus alerts with promtool:
# the rules parse (promtool check rules) and their unit tests pass
# (promtool test rules). Then it runs the Go tests of examples/monitoring,
# which check the Grafana dashboard's queries with the same promtool.
# promtool comes from Debian's prometheus package, installed when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null; then
	echo "check-monitoring: installing Debian's prometheus for promtool"
	sudo=""
	if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
	if ! $sudo apt-get install -y --no-install-recommends prometheus; then
		$sudo apt-get update
		$sudo apt-get install -y --no-install-recommends prometheus
	fi
fi
promtool --version | head -n 1

promtool check rules examples/monitoring/alerts.yml
promtool test rules examples/monitoring/alerts_test.yml
CI="${CI:-true}" go test -count=1 ./examples/monitoring
