#!/usr/bin/env bash
# start-postgres.sh makes sure PostgreSQL answers on 127.0.0.1:5432 with
# trust authentication for the user postgres, starting the machine's
# cluster when it is down. It installs nothing: the CI machine comes with
# PostgreSQL; where it does not, the tests fail under CI=true and say so.
set -euo pipefail

ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ready; then
	echo "start-postgres: already running"
	exit 0
fi
if ! command -v pg_ctlcluster >/dev/null || [[ ! -d /etc/postgresql ]]; then
	echo "start-postgres: no PostgreSQL cluster on this machine" >&2
	exit 0
fi
version=$(ls /etc/postgresql | sort -V | tail -n 1)
pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
for _ in $(seq 1 30); do
	if ready; then
		echo "start-postgres: started cluster $version"
		exit 0
	fi
	sleep 1
done
echo "start-postgres: PostgreSQL did not come up in 30s" >&2
exit 1
