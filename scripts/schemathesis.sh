#!/usr/bin/env bash
# Fuzzes faro's HTTP API against its own /openapi.json with schemathesis: every answer must be
# no 5xx, of a documented status and media type, and valid against the documented schema.
#
# Installs schemathesis (pinned in scripts/requirements-schemathesis.txt) into
# target/schemathesis-venv when missing, builds target/debug/faro, serves the demo data from a
# fresh SQLite file on a free port, creates an admin token and an operator token confined to one
# territory, and runs schemathesis three times: anonymous, as the operator of that territory (on
# the records of every other one it must answer as to an anonymous caller), as the admin (last,
# since its writes can succeed).
# Exits non-zero on any failure; always stops the server.
#
# Environment: SCHEMATHESIS_MAX_EXAMPLES (default 25) test cases per operation and phase;
# SCHEMATHESIS_SEED (default 1) for repeatable runs.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=$PWD/target/schemathesis-venv
requirements=scripts/requirements-schemathesis.txt
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-25}
seed=${SCHEMATHESIS_SEED:-1}
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance

# The venv is rebuilt when the pins change.
if ! cmp -s "$requirements" "$venv/requirements.txt" 2>/dev/null; then
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "installing python3-venv from apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3-venv >/dev/null
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$venv/requirements.txt"
fi
"$venv/bin/schemathesis" --version

cargo build --locked --quiet --bin faro
faro=target/debug/faro

work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
db="sqlite://$work/faro.db"

# The admin token first: the server reads tokens from the same file. The operator's needs a
# territory of the demo, so it is made once the server has loaded it.
admin=$("$faro" token create --role admin --name schemathesis-admin --database-url "$db")

# No rate limit here: the fuzzer's bursts would turn most of its cases into 429s (the limit has
# its own tests, tests/api/limits.rs; 429 is documented on every limited operation).
RUST_LOG=${RUST_LOG:-warn,faro::startup=info} "$faro" serve --listen 127.0.0.1:0 --database-url "$db" --rate-limit 0 \
  >"$work/server.log" 2>&1 &
server=$!
port=""
for _ in $(seq 1 300); do
  port=$(grep -o 'faro listening on http://127\.0\.0\.1:[0-9]*' "$work/server.log" | grep -o '[0-9]*$' || true)
  [ -n "$port" ] && break
  if ! kill -0 "$server" 2>/dev/null; then
    cat "$work/server.log" >&2
    echo "faro serve exited before listening" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$port" ]; then
  cat "$work/server.log" >&2
  echo "faro serve did not listen within 30 s" >&2
  exit 1
fi
base="http://127.0.0.1:$port"
echo "faro serving the demo data at $base"
territory=$(python3 -c 'import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/collections/territories/items?kind=territory&limit=1") as r:
    print(json.load(r)["features"][0]["id"])' "$base")
operator=$("$faro" token create --role operator --territory "$territory" \
  --name "schemathesis-operator-of-$territory" --database-url "$db")
echo "operator confined to $territory"

# Requests may take up to a minute: this is the debug build, where the heaviest generated
# request (/coverage/hexes at H3 resolution 9 with a 74 km radius: ~13 MB of hexagons) took
# over 10 s, against 0.93 s in a release build.
# One worker: with two, hypothesis's ast.parse calls race inside CPython 3.11 and a run can end
# in "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905).
passed=0
failed=0
run() {
  local who=$1
  shift
  local start=$SECONDS status=0
  echo
  echo "--- schemathesis as $who"
  # From the scratch directory, where schemathesis keeps its cache of failures.
  (cd "$work" && "$venv/bin/schemathesis" run "$base/openapi.json" \
    --checks "$checks" \
    --max-examples "$max_examples" \
    --seed "$seed" \
    --workers 1 \
    --request-timeout 60 \
    --generation-database none \
    --no-color \
    "$@") || status=$?
  echo "--- as $who: exit $status in $((SECONDS - start)) s"
  if [ "$status" -eq 0 ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
}
run anonymous
run "operator of $territory" -H "Authorization: Bearer $operator"
run admin -H "Authorization: Bearer $admin"

if ! kill -0 "$server" 2>/dev/null; then
  echo "faro serve died during the runs:" >&2
  cat "$work/server.log" >&2
  failed=$((failed + 1))
fi
echo
echo "schemathesis: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
