#!/usr/bin/env bash
# faro beside PostGIS on the same N points (default 1,000,000 services spread over Italy), in
# one run on one machine:
#   1. time for `faro serve` to load the N points from PostGIS into its index at start;
#   2. requests/s of faro's GET /nearest?k=5 (wrk, CONC connections) against the equivalent
#      PostGIS KNN query (ORDER BY geom <-> point LIMIT 5 over the GiST index; pgbench with CONC
#      pooled connections, prepared statements), and the ratio;
#   3. faro's GET /healthz (an empty handler: the HTTP ceiling), and /nearest as a share of it.
# Uses the server of $FARO_TEST_DATABASE_URL, or a throwaway one from scripts/with-postgres.sh.
#
#   benches/postgis/run.sh                 # N=1000000 CONC=16 DURATION=15
#   N=100000 DURATION=5 benches/postgis/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-1000000}
CONC=${CONC:-16}
DURATION=${DURATION:-15}

if [[ -z "${FARO_BENCH_INNER:-}" ]]; then
    if ! command -v wrk >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq wrk >/dev/null
    fi
    cargo build --release --locked --bin faro
    exec env FARO_BENCH_INNER=1 scripts/with-postgres.sh "$0" "$@"
fi

PSQL=(psql -X -q -v ON_ERROR_STOP=1)
ADMIN=$FARO_TEST_DATABASE_URL
DB=faro_bench_$$
URL="${ADMIN%/*}/$DB"
WORK=$(mktemp -d)
FARO_PID=
cleanup() {
    [[ -n "$FARO_PID" ]] && kill "$FARO_PID" 2>/dev/null || true
    "${PSQL[@]}" "$ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
elapsed() { python3 -c "import time; print(round(time.time() - $1, 2))"; }

echo "== loading $N points into PostGIS"
"${PSQL[@]}" "$ADMIN" -c "CREATE DATABASE $DB"
target/release/faro migrate --database-url "$URL" >/dev/null
start=$(date +%s.%N)
"${PSQL[@]}" "$URL" <<SQL
SELECT setseed(0.42);
ALTER TABLE records DISABLE TRIGGER records_notify;
INSERT INTO records (collection, id, geom, properties, version, created_at, updated_at)
SELECT 'services', 'svc-bench-' || lpad(i::text, 7, '0'),
       ST_SetSRID(ST_MakePoint(6.6 + 12.0 * random(), 36.6 + 10.5 * random()), 4326),
       jsonb_build_object('name', 'Bench service ' || i,
                          'kind', (ARRAY['focal_point','pas','shelter','help_desk','job_centre','health','social_services','other'])[1 + i % 8]),
       1, now(), now()
  FROM generate_series(1, $N) AS i;
ALTER TABLE records ENABLE TRIGGER records_notify;
VACUUM ANALYZE records;
SQL
echo "   PostGIS load: $(elapsed "$start") s"

echo "== starting faro on that database"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start=$(date +%s.%N)
RUST_LOG=info NO_COLOR=1 target/release/faro serve --no-demo --listen "127.0.0.1:$PORT" \
    --database-url "$URL" --pool-size "$CONC" --rate-limit 0 2>"$WORK/faro.log" &
FARO_PID=$!
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do
    kill -0 "$FARO_PID" 2>/dev/null || { cat "$WORK/faro.log"; exit 1; }
    sleep 0.05
done
ready=$(elapsed "$start")
load_line=$(grep 'index loaded from the store' "$WORK/faro.log" | tail -1)
read_ms=$(sed -n 's/.*read_ms=\([0-9]*\).*/\1/p' <<<"$load_line")
build_ms=$(sed -n 's/.*build_ms=\([0-9]*\).*/\1/p' <<<"$load_line")
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$FARO_PID/status")
echo "   faro ready after ${ready} s: read from PostGIS ${read_ms} ms, index build ${build_ms} ms, RSS $((rss_kb / 1024)) MiB"

echo "== sanity: both answer the same 5 nearest for one point"
faro_ids=$(curl -s "http://127.0.0.1:$PORT/nearest?lon=12.24&lat=45.67&k=5" | python3 -c 'import json,sys; print(" ".join(f["id"] for f in json.load(sys.stdin)["features"]))')
pg_ids=$("${PSQL[@]}" "$URL" -At -c "SELECT string_agg(id, ' ' ORDER BY d, id) FROM (SELECT id, d FROM (SELECT id, ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(12.24, 45.67), 4326)::geography) AS d FROM records WHERE collection = 'services' ORDER BY geom <-> ST_SetSRID(ST_MakePoint(12.24, 45.67), 4326) LIMIT 50) c ORDER BY d, id LIMIT 5) t")
echo "   faro:    $faro_ids"
echo "   PostGIS: $pg_ids"
[[ "$faro_ids" == "$pg_ids" ]] || echo "   (they differ: PostGIS ranks <-> by planar degrees; re-ranked here by geography distance)"

echo "== faro: wrk -t2 -c$CONC -d${DURATION}s GET /nearest?k=5"
wrk -t2 -c"$CONC" -d"${DURATION}s" --latency -s benches/postgis/nearest.lua "http://127.0.0.1:$PORT" | tee "$WORK/wrk.txt"
faro_rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt")
echo "== the HTTP ceiling on this machine: wrk on faro's GET /healthz (no work at all)"
wrk -t2 -c"$CONC" -d"${DURATION}s" "http://127.0.0.1:$PORT/healthz" | tee "$WORK/wrk_health.txt"
health_rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk_health.txt")
kill "$FARO_PID"; wait "$FARO_PID" 2>/dev/null || true; FARO_PID=

echo "== PostGIS: pgbench -c$CONC -j2 -T$DURATION -M prepared (KNN LIMIT 5)"
pgbench -n -M prepared -c "$CONC" -j 2 -T "$DURATION" -f benches/postgis/knn.sql "$URL" | tee "$WORK/pgbench.txt"
pg_tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$WORK/pgbench.txt" | tail -1)

echo
echo "== result (N=$N, concurrency $CONC, ${DURATION}s each, $(nproc) cores)"
printf '   faro /nearest k=5:   %12.0f req/s\n' "$faro_rps"
printf '   PostGIS KNN LIMIT 5: %12.0f queries/s\n' "$pg_tps"
printf '   ratio faro/PostGIS:  %12.1fx\n' "$(python3 -c "print($faro_rps / $pg_tps)")"
printf '   faro GET /healthz:   %12.0f req/s (HTTP ceiling; %.1fx PostGIS)\n' "$health_rps" "$(python3 -c "print($health_rps / $pg_tps)")"
printf '   /nearest / /healthz: %12.1f %%\n' "$(python3 -c "print(100 * $faro_rps / $health_rps)")"
printf '   index load at start: %s ms read + %s ms build (ready after %s s)\n' "$read_ms" "$build_ms" "$ready"
