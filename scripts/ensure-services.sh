#!/usr/bin/env bash
# Make sure Redis (6379) and PostgreSQL (5432) answer on loopback, installing and starting them when they don't.
set -euo pipefail

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else echo "need root for: $*" >&2; return 1; fi; }
apt_install() {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
wait_for() { for _ in $(seq 1 30); do answers "$1" && return 0; sleep 1; done; echo "port $1 did not open" >&2; return 1; }

if ! answers 6379; then
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /tmp --logfile /tmp/redis-ci.log
  wait_for 6379
fi
echo "redis: up"

if ! answers 5432; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then apt_install postgresql; fi
  version=$(ls /etc/postgresql | sort -V | tail -1)
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for 5432
fi
# Tests connect as postgres over TCP without a password (trust on loopback, as on our CI machines).
if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1; then
  hba=$(ls /etc/postgresql/*/main/pg_hba.conf | sort -V | tail -1)
  as_root sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main reload
fi
echo "postgresql: up"

# The prometheus kind's tests start Debian's real Prometheus (prometheus, promtool) themselves; without it they skip.
if ! command -v promtool >/dev/null; then
  apt_install --no-install-recommends prometheus || true
fi
if command -v promtool >/dev/null; then echo "prometheus: installed"; else echo "prometheus: not installed; its real-server tests will skip"; fi
