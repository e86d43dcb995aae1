#!/usr/bin/env bash
# Security checks of Arrowgate, run by .ci/run:
#   1. xmlsec1, the independent signer of the SAML test fixtures, is
#      installed when missing (the attack catalogue needs it under CI);
#   2. each fuzz target runs for a short time (ARROW_FUZZTIME, default
#      10s); a crash fails the run and leaves its input in testdata/fuzz,
#      to be committed as a regression test once fixed;
#   3. govulncheck checks the code against the Go vulnerability database,
#      built offline from the golang.org/x/vulndb module, and fails on a
#      reachable vulnerability not listed, with its reason, in
#      .ci/govulncheck-allow.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${ARROW_FUZZTIME:-10s}
vulndb_version=v0.0.0-20261105234957-e22db6528018
govulncheck_version=v1.9.0
failed=0

step() { printf '\n== %s\n' "$*"; }

step "xmlsec1"
if ! command -v xmlsec1 >/dev/null 2>&1; then
	echo "xmlsec1 missing: installing Debian's package"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xmlsec1 >/dev/null
fi
xmlsec1 --version

step "fuzzing, ${fuzztime} a target"
# -fuzzminimizetime=0: minimizing a new input of the ACS target (kilobytes
# of XML through the instrumented SAML stack) takes up to a minute a time
# and stalls a short run; crashers are still written as they were found.
for target in \
	./provisioner:FuzzNormalizeEmail \
	./provisioner:FuzzDirectoryLookup \
	./caddymodule:FuzzSafeReturnTo \
	./caddymodule:FuzzACSDecode \
	./caddymodule:FuzzCaddyfile; do
	pkg=${target%%:*} name=${target##*:}
	echo "-- ${name} (${pkg})"
	if ! go test -run='^$' -fuzz="^${name}\$" -fuzztime="${fuzztime}" \
		-fuzzminimizetime=0 "${pkg}"; then
		echo "FAIL: ${name} found a failing input (see ${pkg}/testdata/fuzz/${name})"
		failed=1
	fi
done

step "govulncheck ${govulncheck_version}"
# This machine reaches only package registries, not vuln.go.dev. The
# database is built from the vulndb module's OSV files with its own
# indexdb command, both fetched through the Go module proxy.
dbdir=${ARROW_VULNDB_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/arrowgate/vulndb-${vulndb_version}}
build_db() {
	local tmp src
	tmp=$(mktemp -d)
	src=$(cd "$tmp" && go mod download -json \
		"golang.org/x/vulndb@${vulndb_version}" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	rm -rf "$tmp"
	[ -d "${src}/data/osv" ] || return 1
	rm -rf "${dbdir}.new"
	(cd / && go run "golang.org/x/vulndb/cmd/indexdb@${vulndb_version}" \
		-vulns "${src}/data/osv" -out "${dbdir}.new") || return 1
	rm -rf "${dbdir}" && mv "${dbdir}.new" "${dbdir}"
}
if [ ! -f "${dbdir}/index/db.json" ] && ! build_db; then
	echo "govulncheck: NOT CHECKED: the vulnerability database could not"
	echo "be built from golang.org/x/vulndb@${vulndb_version} (is the Go"
	echo "module proxy reachable?)"
	# a check that did not run must not read as passed in CI
	if [ "${CI:-}" = "true" ]; then
		failed=1
	fi
else
	report=$(mktemp) bin=$(mktemp -d)
	# installed, not go run, so that its exit status comes through:
	# 3 means it found vulnerabilities, anything else but 0 that it failed
	GOBIN="${bin}" go install \
		"golang.org/x/vuln/cmd/govulncheck@${govulncheck_version}"
	set +e
	"${bin}/govulncheck" -db "file://${dbdir}" ./... >"${report}" 2>&1
	rc=$?
	set -e
	rm -rf "${bin}"
	cat "${report}"
	if [ "${rc}" -ne 0 ] && [ "${rc}" -ne 3 ]; then
		echo "FAIL: govulncheck did not run (exit ${rc})"
		failed=1
	fi
	# the IDs govulncheck found reachable from the code
	found=$(grep -oE '^Vulnerability #[0-9]+: GO-[0-9]+-[0-9]+' "${report}" |
		awk '{print $3}' | sort -u)
	allowed=$(grep -oE '^GO-[0-9]+-[0-9]+' .ci/govulncheck-allow.txt |
		sort -u)
	open=$(comm -23 <(printf '%s\n' ${found}) <(printf '%s\n' ${allowed}) |
		grep . || true)
	rm -f "${report}"
	if [ -n "${open}" ]; then
		echo "FAIL: reachable vulnerabilities not in" \
			".ci/govulncheck-allow.txt:" ${open}
		failed=1
	else
		echo "govulncheck: no reachable vulnerability beyond those" \
			"allowed in .ci/govulncheck-allow.txt"
	fi
fi

if [ "${failed}" -ne 0 ]; then
	echo "security checks: FAILED"
	exit 1
fi
echo "security checks: passed"
