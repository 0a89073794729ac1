#!/usr/bin/env bash
# Start a local PostgreSQL cluster that is installed but stopped, so `make test` can run
# the PostgreSQL suite. Does nothing where PostgreSQL is not installed (the tests then
# skip it, except under CI=true, where they fail).
set -u
command -v pg_lsclusters >/dev/null 2>&1 || exit 0
pg_lsclusters --no-header 2>/dev/null | while read -r ver cluster _port status _rest; do
  if [ "$status" = "down" ]; then
    echo "starting PostgreSQL $ver/$cluster" >&2
    pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" start || true
  fi
done
exit 0
