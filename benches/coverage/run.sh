#!/usr/bin/env bash
# faro's coverage analysis beside the same computation in PostGIS SQL, and at the scale of Italy.
# Both sides read the same records: they are generated once in PostGIS (faro's `records` table),
# and `faro serve` runs on that database, so it loads exactly the rows the SQL reads.
#
#   1. Treviso: the real 94 ISTAT comuni of the province (openpolis 2023) grouped into four
#      territories (two columns by longitude, each split in two by latitude, of their
#      representative points) and dissolved; 100 services of four kinds (5 confidential), 5,000
#      settlements and 5,000 worksites, seeded and uniform over the province's box (the case of
#      benches/coverage.rs). faro's whole GET /coverage (authorised, a new radius each request:
#      never from the cache) against the SQL a GIS analyst would write (geography discs with
#      ST_Buffer, ST_Union, ST_Intersection, ST_Area(geography), ST_DWithin(geography) counts over
#      a GiST index on geom::geography), run alternately A B A B; the medians and their ratio;
#      and both answers side by side (areas within 0.5 %, counts equal).
#      Then GET /coverage/suggest?k=3 over H3 resolution 8 candidates (focal points only).
#   2. Italy: the 107 provinces (TopoJSON, converted with ogr2ogr) as territories, 1,000
#      services, 1,000,000 settlements and worksites (half each) placed in the provinces in
#      proportion to their area; faro's GET /coverage uncached, and the growth from Treviso.
#
# Uses the server of $FARO_TEST_DATABASE_URL, or a throwaway one from scripts/with-postgres.sh.
#
#   benches/coverage/run.sh                    # RUNS=5 CASES="treviso italy" RADIUS_M=15000
#   FARO=target/debug/faro RUNS=1 CASES=treviso benches/coverage/run.sh   # checks the script only
#   RUNS=3 CASES=treviso benches/coverage/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-5}
CASES=${CASES:-treviso italy}
RADIUS_M=${RADIUS_M:-15000}
# A second radius for the agreement check, where the catchments cover part of each territory
# only (at 15 km the 100 services cover all of Treviso, so the areas agree trivially).
CHECK_RADIUS_M=${CHECK_RADIUS_M:-3000}
ITALY_DEMAND=${ITALY_DEMAND:-1000000}
SHARED=${FARO_SHARED_DATA:-../shared/data}
# The binary (a debug one checks the script, not the figures).
FARO=${FARO:-target/release/faro}
BOUNDARIES=$SHARED/istat/boundaries_openpolis_2023
COMUNI=$BOUNDARIES/limits_P_26_municipalities.geojson
PROVINCES=$BOUNDARIES/limits_IT_provinces.topo.json

if [[ ! -f "$COMUNI" || ! -f "$PROVINCES" ]]; then
    echo "SKIPPED benches/coverage/run.sh: no $COMUNI or $PROVINCES (the shared ISTAT data)"
    exit 0
fi

if [[ -z "${FARO_BENCH_INNER:-}" ]]; then
    [[ "$FARO" != target/release/faro ]] || nice -n 10 cargo build --release --locked --bin faro
    exec env FARO_BENCH_INNER=1 scripts/with-postgres.sh "$0" "$@"
fi

PSQL=(psql -X -q -v ON_ERROR_STOP=1)
ADMIN=$FARO_TEST_DATABASE_URL
WORK=$(mktemp -d)
FARO_PID=
DBS=()
cleanup() {
    [[ -n "$FARO_PID" ]] && kill "$FARO_PID" 2>/dev/null || true
    for db in "${DBS[@]}"; do
        "${PSQL[@]}" "$ADMIN" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 2))" "$1" "$(now)"; }
median() { python3 -c "import statistics, sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
KINDS="focal_point,pas,shelter,help_desk"
KINDS_SQL="'focal_point','pas','shelter','help_desk'"

new_database() {
    local db=faro_cov_${1}_$$
    "${PSQL[@]}" "$ADMIN" -c "CREATE DATABASE $db" >/dev/null
    DBS+=("$db")
    URL="${ADMIN%/*}/$db"
    "$FARO" migrate --database-url "$URL" >/dev/null
    "${PSQL[@]}" "$URL" -c "ALTER TABLE records DISABLE TRIGGER records_notify"
}

# "$1" services, and "$2" settlements and worksites (half each), over the territories that
# match the SQL condition "$3": uniform over their box, or with "$4" = area, in the
# territories in proportion to their area (over all of Italy a box would put half in the sea).
load_points() {
    local services=$1 demand=$2 where=$3 spread=${4:-box}
    "${PSQL[@]}" "$URL" <<SQL
SELECT setseed(0.2026);
CREATE TEMP TABLE area AS SELECT geom FROM records WHERE collection = 'territories' AND $where;
-- n points numbered from 0, uniform over the box of the areas or in the areas by their size.
CREATE FUNCTION pg_temp.points(n int, seed int) RETURNS TABLE (i bigint, geom geometry)
LANGUAGE sql AS \$\$
  SELECT g.i::bigint, ST_SetSRID(ST_MakePoint(ST_XMin(b) + (ST_XMax(b) - ST_XMin(b)) * random(),
                                      ST_YMin(b) + (ST_YMax(b) - ST_YMin(b)) * random()), 4326)
    FROM (SELECT ST_Extent(geom)::box2d AS b FROM area) e, generate_series(0, n - 1) AS g(i)
   WHERE '$spread' = 'box'
  UNION ALL
  SELECT row_number() OVER () - 1, p.geom
    FROM (SELECT (ST_Dump(ST_GeneratePoints(geom, k, seed))).geom
            FROM (SELECT geom, round(n * a / sum(a) OVER ())::int AS k
                    FROM (SELECT geom, ST_Area(geom::geography) AS a FROM area) t) s
           WHERE k > 0) p
   WHERE '$spread' = 'area'
\$\$;
INSERT INTO records (collection, id, geom, properties, version, created_at, updated_at)
SELECT 'services', 'svc-' || lpad(i::text, 4, '0'), geom,
       jsonb_build_object('name', 'Servizio ' || i,
                          'kind', (ARRAY['focal_point','pas','shelter','help_desk'])[1 + i % 4],
                          'confidential', i % 20 = 7, 'capacity', 10),
       1, now(), now()
  FROM pg_temp.points($services, 1) AS p(i, geom);
CREATE TEMP TABLE pts AS SELECT * FROM pg_temp.points($demand, 2);
INSERT INTO records (collection, id, geom, properties, version, created_at, updated_at)
SELECT 'settlements', 'set-' || lpad(i::text, 7, '0'), geom,
       jsonb_build_object('name', 'Insediamento ' || i, 'population_estimate', 1 + (i / 2) % 200), 1, now(), now()
  FROM pts WHERE i % 2 = 0;
INSERT INTO records (collection, id, geom, properties, version, created_at, updated_at)
SELECT 'worksites', 'ws-' || lpad(i::text, 7, '0'), geom,
       jsonb_build_object('name', 'Azienda ' || i, 'kind', 'farm', 'workers_estimate', 1 + (i / 2) % 100), 1, now(), now()
  FROM pts WHERE i % 2 = 1;
-- What an analyst adds before asking distance questions in metres.
CREATE INDEX records_geog_gist ON records USING gist ((geom::geography));
ALTER TABLE records ENABLE TRIGGER records_notify;
VACUUM ANALYZE records;
SQL
}

start_faro() {
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    local start
    start=$(now)
    RUST_LOG=info NO_COLOR=1 "$FARO" serve --no-demo --listen "127.0.0.1:$PORT" \
        --database-url "$URL" --rate-limit 0 >"$WORK/faro.log" 2>&1 &
    FARO_PID=$!
    until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do
        kill -0 "$FARO_PID" 2>/dev/null || { cat "$WORK/faro.log"; exit 1; }
        sleep 0.1
    done
    echo "   faro ready after $(elapsed "$start") s, RSS $(($(awk '/VmRSS/ {print $2}' "/proc/$FARO_PID/status") / 1024)) MiB"
    TOKEN=$("$FARO" token create --role operator --name bench --database-url "$URL" 2>/dev/null | grep -o 'faro_[A-Za-z0-9_-]*' | head -1)
}

stop_faro() {
    kill "$FARO_PID"
    wait "$FARO_PID" 2>/dev/null || true
    FARO_PID=
}

# Seconds of one uncached GET /coverage at radius "$1" (its body in $WORK/faro.json).
faro_coverage() {
    curl -sf -o "$WORK/faro.json" -w '%{time_total}' -H "Authorization: Bearer $TOKEN" \
        "http://127.0.0.1:$PORT/coverage?kind=$KINDS&radius_m=$1"
}

# The analyst's SQL for the same figures at radius "$1" metres, per territory.
coverage_sql() {
    cat <<SQL
WITH svc AS (
    SELECT geom FROM records
     WHERE collection = 'services' AND properties->>'kind' IN ($KINDS_SQL)
), catchments AS (
    -- 32 segments a quarter: a 128-gon, 0.04 % short of the disc's area.
    SELECT ST_Union(ST_Buffer(geom::geography, $1, 'quad_segs=32')::geometry) AS g FROM svc
), terr AS (
    SELECT id, geom FROM records WHERE collection = 'territories' AND properties->>'level' = 'territory'
), demand AS (
    SELECT d.collection, d.geom,
           coalesce((d.properties->>'population_estimate')::bigint, (d.properties->>'workers_estimate')::bigint, 0) AS size,
           EXISTS (SELECT 1 FROM records s
                    WHERE s.collection = 'services' AND s.properties->>'kind' IN ($KINDS_SQL)
                      AND ST_DWithin(s.geom::geography, d.geom::geography, $1)) AS covered
      FROM records d WHERE d.collection IN ('settlements', 'worksites')
), per AS (
    SELECT t.id,
           count(*) FILTER (WHERE d.collection = 'settlements') AS settlements,
           count(*) FILTER (WHERE d.collection = 'settlements' AND d.covered) AS settlements_covered,
           coalesce(sum(d.size) FILTER (WHERE d.collection = 'settlements'), 0) AS people,
           coalesce(sum(d.size) FILTER (WHERE d.collection = 'settlements' AND d.covered), 0) AS people_covered,
           count(*) FILTER (WHERE d.collection = 'worksites') AS worksites,
           count(*) FILTER (WHERE d.collection = 'worksites' AND d.covered) AS worksites_covered,
           coalesce(sum(d.size) FILTER (WHERE d.collection = 'worksites'), 0) AS workers,
           coalesce(sum(d.size) FILTER (WHERE d.collection = 'worksites' AND d.covered), 0) AS workers_covered
      FROM terr t LEFT JOIN demand d ON ST_Intersects(t.geom, d.geom)
     GROUP BY t.id
)
SELECT t.id,
       round((ST_Area(t.geom::geography) / 1e6)::numeric, 3),
       round((ST_Area(ST_Intersection(t.geom, c.g)::geography) / 1e6)::numeric, 3),
       (SELECT count(*) FROM svc WHERE ST_Intersects(t.geom, svc.geom)),
       p.settlements, p.settlements_covered, p.people, p.people_covered,
       p.worksites, p.worksites_covered, p.workers, p.workers_covered
  FROM terr t CROSS JOIN catchments c JOIN per p USING (id)
 ORDER BY t.id;
SQL
}

# Seconds of one run of the SQL at radius "$1" (its rows in $WORK/pg.txt), psql's own timing.
pg_coverage() {
    { echo '\timing on'; coverage_sql "$1"; } | "${PSQL[@]}" -At -F' ' "$URL" >"$WORK/pg_out.txt"
    grep -v '^Time:' "$WORK/pg_out.txt" >"$WORK/pg.txt"
    sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' "$WORK/pg_out.txt" | tail -1 | awk '{print $1 / 1000}'
}

# faro's answer in the SQL's columns.
faro_rows() {
    python3 - "$WORK/faro.json" <<'PY'
import json, sys
body = json.load(open(sys.argv[1]))
for t in sorted(body["territories"], key=lambda t: t["id"]):
    s, w = t["settlements"], t["worksites"]
    print(t["id"], f'{t["area_km2"]:.3f}', f'{t["covered_area_km2"]:.3f}', t["services"],
          s["total"], s["covered"], s["people_total"], s["people_covered"],
          w["total"], w["covered"], w["workers_total"], w["workers_covered"])
PY
}

compare_rows() {
    python3 - "$1" "$2" <<'PY'
import sys
faro = [l.split() for l in open(sys.argv[1]) if l.strip()]
pg = [l.split() for l in open(sys.argv[2]) if l.strip()]
names = ["area km2", "covered km2", "services", "settlements", "covered", "people", "covered",
         "worksites", "covered", "workers", "covered"]
ok = len(faro) == len(pg)
worst = 0.0
for f, p in zip(faro, pg):
    ok &= f[0] == p[0]
    print(f"   {f[0]}")
    for i, name in enumerate(names, start=1):
        a, b = float(f[i]), float(p[i])
        if i <= 2:
            rel = abs(a - b) / max(abs(b), 1e-9)
            worst = max(worst, rel)
            ok &= rel <= 0.005
            print(f"      {name:12} faro {a:14.3f}  PostGIS {b:14.3f}  {100 * rel:.3f} %")
        else:
            ok &= a == b
            if a != b or i in (3, 4, 5, 8, 9):
                print(f"      {name:12} faro {a:14.0f}  PostGIS {b:14.0f}{'' if a == b else '  DIFFERENT'}")
print(f"   {'AGREE' if ok else 'DISAGREE'}: areas within {100 * worst:.3f} % (bound 0.5 %), counts "
      + ("equal" if ok else "see above"))
sys.exit(0 if ok else 1)
PY
}

echo "== $(date -u '+%F %T') UTC, $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); load: $(uptime | sed 's/.*load average: //')"

treviso_ms=
if [[ " $CASES " == *" treviso "* ]]; then
    echo "== Treviso: loading the 94 comuni, four territories, 100 services, 10,000 settlements and worksites"
    new_database treviso
    ogr2ogr -f PostgreSQL "PG:$URL" "$COMUNI" -nln bench_comuni -lco GEOMETRY_NAME=geom -nlt PROMOTE_TO_MULTI -t_srs EPSG:4326
    "${PSQL[@]}" "$URL" <<SQL
CREATE TEMP TABLE grouped AS
SELECT com_istat_code AS code, name, geom, (gx - 1) * 2 + ntile(2) OVER (PARTITION BY gx ORDER BY y) AS g
  FROM (SELECT com_istat_code, name, geom, ST_Y(p) AS y, ntile(2) OVER (ORDER BY ST_X(p)) AS gx
          FROM (SELECT *, ST_PointOnSurface(geom) AS p FROM bench_comuni) c) c;
INSERT INTO records (collection, id, geom, properties, version, created_at, updated_at)
SELECT 'territories', 'com-' || code, geom,
       jsonb_build_object('name', name, 'level', 'comune', 'code', code, 'parent', 'terr-bench-' || g), 1, now(), now()
  FROM grouped;
INSERT INTO records (collection, id, geom, properties, version, created_at, updated_at)
SELECT 'territories', 'terr-bench-' || g, ST_Multi(ST_Union(geom)),
       jsonb_build_object('name', 'Territorio ' || g, 'level', 'territory'), 1, now(), now()
  FROM grouped GROUP BY g;
DROP TABLE bench_comuni;
SQL
    load_points 100 10000 "properties->>'level' = 'comune'"
    start_faro

    echo "== Treviso: GET /coverage (uncached, a new radius each run) against the SQL, alternately, $RUNS runs each"
    coverage_sql "$RADIUS_M" >"$WORK/coverage.sql"
    faro_coverage "$RADIUS_M" >/dev/null
    pg_coverage "$RADIUS_M" >/dev/null
    fs=() ps=()
    for i in $(seq 1 "$RUNS"); do
        fs+=("$(faro_coverage "$((RADIUS_M + i))")")
        ps+=("$(pg_coverage "$((RADIUS_M + i))")")
        printf '   run %d: faro %.4f s, PostGIS %.3f s\n' "$i" "${fs[-1]}" "${ps[-1]}"
    done
    f=$(median "${fs[@]}")
    p=$(median "${ps[@]}")
    treviso_ms=$(python3 -c "print($f * 1000)")
    for r in "$RADIUS_M" "$CHECK_RADIUS_M"; do
        echo "== Treviso: the answers at radius $r m"
        faro_coverage "$r" >/dev/null
        pg_coverage "$r" >/dev/null
        faro_rows >"$WORK/faro.txt"
        compare_rows "$WORK/faro.txt" "$WORK/pg.txt" || agree=no
    done
    echo "== Treviso: GET /coverage cached (the same request again)"
    cached=()
    for _ in $(seq 1 "$RUNS"); do cached+=("$(faro_coverage "$RADIUS_M")"); done
    echo "== Treviso: GET /coverage/suggest?kind=focal_point&k=3 over H3 resolution 8 (uncached)"
    sug=()
    for i in $(seq 1 "$RUNS"); do
        sug+=("$(curl -sf -o "$WORK/suggest.json" -w '%{time_total}' -H "Authorization: Bearer $TOKEN" \
            "http://127.0.0.1:$PORT/coverage/suggest?kind=focal_point&radius_m=$((RADIUS_M + i))&k=3&resolution=8")")
    done
    python3 -c "import json; b = json.load(open('$WORK/suggest.json')); print('   ', b['candidates']['count'], 'candidates; gains', [f['properties']['people'] + f['properties']['workers'] for f in b['features']])"
    stop_faro
    echo
    echo "== Treviso result (radius $RADIUS_M m, median of $RUNS, load: $(uptime | sed 's/.*load average: //'))"
    printf '   faro GET /coverage uncached:   %8.1f ms\n' "$treviso_ms"
    printf '   PostGIS SQL:                   %8.1f ms\n' "$(python3 -c "print($p * 1000)")"
    printf '   ratio PostGIS / faro:          %8.1fx\n' "$(python3 -c "print($p / $f)")"
    printf '   faro GET /coverage cached:     %8.2f ms (curl, connection included)\n' "$(python3 -c "print($(median "${cached[@]}") * 1000)")"
    printf '   faro GET /coverage/suggest k=3 r8: %8.1f ms\n' "$(python3 -c "print($(median "${sug[@]}") * 1000)")"
    echo
fi

if [[ " $CASES " == *" italy "* ]]; then
    echo "== Italy: loading 107 provinces, 1,000 services, $ITALY_DEMAND settlements and worksites"
    new_database italy
    ogr2ogr -f GeoJSON "$WORK/provinces.geojson" "$PROVINCES" -a_srs EPSG:4326 -nlt PROMOTE_TO_MULTI
    ogr2ogr -f PostgreSQL "PG:$URL" "$WORK/provinces.geojson" -nln bench_provinces -lco GEOMETRY_NAME=geom -nlt PROMOTE_TO_MULTI
    start=$(now)
    "${PSQL[@]}" "$URL" <<SQL
INSERT INTO records (collection, id, geom, properties, version, created_at, updated_at)
SELECT 'territories', 'prov-' || prov_istat_code, ST_Multi(ST_CollectionExtract(ST_MakeValid(geom), 3)),
       jsonb_build_object('name', prov_name, 'level', 'territory', 'code', prov_istat_code), 1, now(), now()
  FROM bench_provinces;
DROP TABLE bench_provinces;
SQL
    load_points 1000 "$ITALY_DEMAND" "properties->>'level' = 'territory'" area
    echo "   PostGIS load: $(elapsed "$start") s"
    start_faro
    faro_coverage "$RADIUS_M" >/dev/null
    its=()
    for i in $(seq 1 "$RUNS"); do
        its+=("$(faro_coverage "$((RADIUS_M + i))")")
        printf '   run %d: faro %.3f s\n' "$i" "${its[-1]}"
    done
    python3 - "$WORK/faro.json" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
t = b["total"]
print(f'   {len(b["territories"])} territories, {t["area_km2"]:.0f} km², {100 * t["covered_share"]:.1f} % covered, '
      f'{t["services"]} services, {t["settlements"]["covered"]}/{t["settlements"]["total"]} settlements and '
      f'{t["worksites"]["covered"]}/{t["worksites"]["total"]} worksites covered')
PY
    stop_faro
    i=$(median "${its[@]}")
    echo
    echo "== Italy result (radius $RADIUS_M m, median of $RUNS, load: $(uptime | sed 's/.*load average: //'))"
    printf '   faro GET /coverage uncached:   %8.1f ms\n' "$(python3 -c "print($i * 1000)")"
    if [[ -n "$treviso_ms" ]]; then
        printf '   growth from Treviso:           %8.1fx the time, for 27x the territories, 10x the services, 100x the demand\n' \
            "$(python3 -c "print($i * 1000 / $treviso_ms)")"
    fi
fi
[[ "${agree:-yes}" == yes ]]
