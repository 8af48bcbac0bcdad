#!/usr/bin/env bash
# The whole test suite of faro, as CI runs it: formatting, lints, unit/property/black-box tests
# on the embedded SQLite store, browser tests of the map viewer (Debian's chromium driven by
# playwright-core), schemathesis against the running server's /openapi.json, the same
# black-box suite on PostgreSQL + PostGIS (installed from apt and started on a throwaway loopback
# cluster when missing), and a compile check of the benches. Run as root on Debian 12 with only
# package registries reachable.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
# Every test run's output also goes here, to total the results at the end.
results=$(mktemp)
trap 'rm -f "$results"' EXIT

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
# GDAL's OGC API Features driver is the independent client of tests/api/gdal.rs.
command -v ogr2ogr >/dev/null 2>&1 || need_apt+=(gdal-bin)
# npm installs the web packages (the map style validator).
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  step "installing ${need_apt[*]} from apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

export FARO_REQUIRE_GDAL=1
export FARO_REQUIRE_WEB=1
# One full build, not an edit loop: incremental caches would add gigabytes for nothing.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step "web packages (npm ci, from web/package-lock.json)"
if [ ! -e web/node_modules/.package-lock.json ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
  npm ci --prefix web --no-audit --no-fund --loglevel=error
fi

step "demo data is what its generator makes"
python3 scripts/make_demo_data.py --check

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (pedantic, warnings are errors)"
cargo clippy --all-targets --locked -- -D warnings

step "unit, property and black-box tests on the embedded SQLite store"
cargo test --locked --lib --bins --tests 2>&1 | tee -a "$results"

step "browser tests of the map viewer (Chromium, playwright-core)"
scripts/browser-tests.sh

step "doc tests"
cargo test --locked --doc 2>&1 | tee -a "$results"

step "schemathesis: /openapi.json against the running server"
scripts/schemathesis.sh

step "black-box and store tests on PostgreSQL + PostGIS"
scripts/with-postgres.sh env FARO_TEST_BACKEND=postgres FARO_REQUIRE_POSTGRES=1 \
  cargo test --locked --test api --test store --test postgres_store --test pg_outage --test postgres_tls \
  2>&1 | tee -a "$results"

# In the dev profile, so it reuses the tests' build instead of a second, optimised one (clippy
# has already checked them; this links them).
step "benches compile"
cargo build --locked --benches

step "all passed"
df -h . | awk 'NR == 2 { print "disk: " $3 " used, " $4 " free" }'
du -sh target 2>/dev/null | awk '{ print "target: " $1 }'
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' "$results"
