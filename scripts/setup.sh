#!/usr/bin/env bash
# Installs what karlstage needs on a fresh Debian/Ubuntu machine, idempotently and
# quickly when it is all there already: system packages with apt-get, npm
# packages with "npm ci" (which also builds dist/).
#   scripts/setup.sh demo   what the demo needs
#   scripts/setup.sh test   what the tests need
set -euo pipefail
cd "$(dirname "$0")/.."
purpose=${1:-test}
export PATH="$PATH:/usr/sbin:/sbin" # nginx, postmap

# program:package pairs
# openssl hashes the TLS host's passwords (and makes the demo's certificate); nginx serves the
# one TLS host (the demo runs its own).
wanted=(git:git svn:subversion svnadmin:subversion svnserve:subversion rsync:rsync pg_dump:postgresql-client openssl:openssl nginx:nginx-light curl:curl)
# The tests and the demo run postfix (staged mail in and out, a private instance each; the
# demo shows the mail that arrived and the mail it kept). The tests also open pages in
# Debian's chromium and scan the TLS host with sslscan; bench/tls.mjs loads it with wrk.
if [ "$purpose" = test ] || [ "$purpose" = demo ]; then wanted+=(postmap:postfix); fi
[ "$purpose" = test ] && wanted+=(chromium:chromium sslscan:sslscan)
[ "$purpose" = bench ] && wanted+=(wrk:wrk)

missing=()
for pair in "${wanted[@]}"; do
  program=${pair%%:*} package=${pair#*:}
  command -v "$program" >/dev/null 2>&1 || missing+=("$package")
done
# The demo and the sync tests start throwaway PostgreSQL clusters (initdb is not on PATH).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
# The tests read every instances.ini karlstage writes with Debian's own Python 3 (configparser),
# as KARL reads it: /usr/bin/python3, whatever else is first on PATH.
if [ "$purpose" = test ] && [ ! -x /usr/bin/python3 ]; then
  missing+=(python3)
fi
if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "setup: installing ${missing[*]} with apt-get" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci when node_modules is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
elif [ ! -f dist/bundle/karlstage.cjs ]; then
  npm run --silent build
fi
echo "setup: ready for the $purpose" >&2
