#!/usr/bin/env bash
# `make test-deploy` needs PostgreSQL (the metadata database) and Redis (the Celery broker).
# Both come from Debian's packages; the test starts its own throwaway instances on 127.0.0.1,
# so the system services are never started or used.
set -euo pipefail
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
    echo "» installing ${missing[*]} from Debian's packages"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
