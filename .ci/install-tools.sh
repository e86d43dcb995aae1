#!/usr/bin/env bash
# install-tools.sh installs the command-line tools that tests call, when
# missing: xmlsec1 (the independent signer of the SAML attack fixtures)
# and promtool (Debian's prometheus package, which checks the example
# alert rules and dashboard queries). Run it as root; it is idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

missing=()
command -v xmlsec1 >/dev/null || missing+=(xmlsec1)
command -v promtool >/dev/null || missing+=(prometheus)
if ((${#missing[@]} == 0)); then
	echo "install-tools: all present"
	exit 0
fi
echo "install-tools: installing ${missing[*]}"
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
