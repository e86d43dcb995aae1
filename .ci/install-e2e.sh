#!/usr/bin/env bash
# install-e2e.sh installs what the end-to-end tests need on a Debian
# machine: SimpleSAMLphp as an independent identity provider, the PHP
# command line to serve it, and headless Chromium to drive it as a person
# would. Run it as root. It is idempotent: when every package is already
# installed it changes nothing and touches no network.
#
# Usage: bash .ci/install-e2e.sh
set -euo pipefail

# packages lists what the tests use:
#   simplesamlphp      the identity provider (1.19 on Debian 12)
#   php-cli            `php -S`, the built-in web server that runs it
#   php-xml            the dom extension; simplesamlphp does not pull it in
#   chromium           the browser, driven by chromedp over DevTools
#   fonts-dejavu-core  a font, so screenshots show text, not boxes
packages=(simplesamlphp php-cli php-xml chromium fonts-dejavu-core)

export DEBIAN_FRONTEND=noninteractive

# installed tells whether dpkg has the package fully installed.
installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null |
		grep -q '^install ok installed$'
}

# known tells whether apt has a version of the package to install.
known() {
	local candidate
	candidate=$(apt-cache policy "$1" 2>/dev/null |
		awk '/Candidate:/ { print $2 }')
	[[ -n "$candidate" && "$candidate" != "(none)" ]]
}

missing=()
for p in "${packages[@]}"; do
	installed "$p" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
	echo "install-e2e: all present: ${packages[*]}"
	exit 0
fi
echo "install-e2e: installing ${missing[*]}"

if ((EUID != 0)); then
	echo "install-e2e: must run as root to install ${missing[*]}" >&2
	exit 1
fi

# refresh the package lists once, only when one of the packages is unknown
# to apt (a fresh machine has no lists at all).
updated=false
for p in "${missing[@]}"; do
	if ! known "$p"; then
		apt-get update -q
		updated=true
		break
	fi
done
for p in "${missing[@]}"; do
	if ! known "$p"; then
		echo "install-e2e: apt knows no package $p" >&2
		exit 1
	fi
done

# simplesamlphp depends on a web server (apache2). Keep it from starting:
# the tests run PHP's own server on a port of their choosing. Docker
# images already carry such a policy; add one only for this run if not.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	trap 'rm -f "$policy"' EXIT
fi

install_missing() {
	apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# stale lists name versions the mirror has dropped (security updates of
# chromium replace each other); refresh once and try again.
if ! install_missing; then
	if $updated; then
		exit 1
	fi
	echo "install-e2e: install failed, refreshing package lists" >&2
	apt-get update -q
	install_missing
fi

for p in "${packages[@]}"; do
	if ! installed "$p"; then
		echo "install-e2e: $p is still not installed" >&2
		exit 1
	fi
done
echo "install-e2e: done"
