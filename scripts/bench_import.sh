#!/usr/bin/env bash
# Import and export of N points (default 1,000,000) with faro and with GDAL's ogr2ogr, side
# by side in one run: wall time and peak memory of each, and faro's ratio to ogr2ogr.
#
#   cargo build --release --bin faro
#   scripts/bench_import.sh [N]
#
# Needs python3, ogr2ogr (gdal-bin) and GNU time (/usr/bin/time). With FARO_BENCH_PG set to
# a PostgreSQL + PostGIS URL (a scratch database: its tables are emptied and written; psql
# empties them), also imports into PostGIS with both, for example
#
#   scripts/with-postgres.sh bash -c 'FARO_BENCH_PG=$FARO_TEST_DATABASE_URL scripts/bench_import.sh'
#
# Points are services spread over the Province of Treviso.
set -euo pipefail
n=${1:-1000000}
faro=${FARO_BIN:-target/release/faro}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

python3 - "$n" "$dir" <<'PY'
import json, random, sys
n, d = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(20261201)
kinds = ["pas", "help_desk", "shelter", "focal_point", "health"]
with open(f"{d}/points.geojson", "w") as gj, open(f"{d}/points.csv", "w") as csv:
    gj.write('{"type":"FeatureCollection","features":[\n')
    csv.write("id,name,kind,lon,lat\n")
    for i in range(n):
        lon, lat = round(rnd.uniform(11.74, 12.69), 7), round(rnd.uniform(45.53, 46.08), 7)
        kind = kinds[i % len(kinds)]
        sep = "," if i else ""
        gj.write(f'{sep}{{"type":"Feature","id":"svc-{i}","geometry":{{"type":"Point","coordinates":[{lon},{lat}]}},"properties":{{"name":"Servizio {i}","kind":"{kind}"}}}}\n')
        csv.write(f"svc-{i},Servizio {i},{kind},{lon},{lat}\n")
    gj.write("]}\n")
PY
ls -l "$dir"

# run LABEL CMD...: prints "LABEL seconds peak_MB" and remembers the seconds.
declare -A secs
run() {
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$dir/time" "$@" >/dev/null 2>"$dir/err" || { cat "$dir/err"; exit 1; }
  read -r s kb <"$dir/time"
  secs[$label]=$s
  printf '%-34s %8.2f s %8.0f MB\n' "$label" "$s" "$((kb / 1024))"
}
ratio() { python3 -c "print(f'{\"$1\":<34} faro / ogr2ogr = {float(\"$2\")/float(\"$3\"):.2f}')"; }

run "faro import geojson -> sqlite" "$faro" import services "$dir/points.geojson" --database-url "sqlite://$dir/a.db"
run "faro import csv -> sqlite" "$faro" import services "$dir/points.csv" --database-url "sqlite://$dir/b.db"
run "faro export sqlite -> gpkg" "$faro" export services --format gpkg -o "$dir/out.gpkg" --database-url "sqlite://$dir/a.db"
run "ogr2ogr geojson -> gpkg" ogr2ogr -f GPKG "$dir/o1.gpkg" "$dir/points.geojson"
run "ogr2ogr csv -> gpkg" ogr2ogr -f GPKG "$dir/o2.gpkg" "$dir/points.csv" -oo X_POSSIBLE_NAMES=lon -oo Y_POSSIBLE_NAMES=lat -a_srs EPSG:4326
ratio "import geojson (sqlite vs gpkg)" "${secs[faro import geojson -> sqlite]}" "${secs[ogr2ogr geojson -> gpkg]}"
ratio "import csv (sqlite vs gpkg)" "${secs[faro import csv -> sqlite]}" "${secs[ogr2ogr csv -> gpkg]}"
ratio "export gpkg vs ogr2ogr to gpkg" "${secs[faro export sqlite -> gpkg]}" "${secs[ogr2ogr geojson -> gpkg]}"

if [[ -n "${FARO_BENCH_PG:-}" ]]; then
  # Each faro import starts from empty tables (the second would otherwise find every record
  # unchanged); ogr2ogr overwrites its own table.
  empty() { psql -q "$FARO_BENCH_PG" -c "TRUNCATE records, audit_log" 2>/dev/null || true; }
  empty
  run "faro import geojson -> postgis" "$faro" import services "$dir/points.geojson" --database-url "$FARO_BENCH_PG"
  empty
  run "faro import csv -> postgis" "$faro" import services "$dir/points.csv" --database-url "$FARO_BENCH_PG"
  run "ogr2ogr geojson -> postgis" ogr2ogr -f PostgreSQL "PG:$FARO_BENCH_PG" "$dir/points.geojson" -nln bench_points -overwrite
  run "ogr2ogr csv -> postgis" ogr2ogr -f PostgreSQL "PG:$FARO_BENCH_PG" "$dir/points.csv" -nln bench_points_csv -overwrite -oo X_POSSIBLE_NAMES=lon -oo Y_POSSIBLE_NAMES=lat -a_srs EPSG:4326
  ratio "import geojson (postgis)" "${secs[faro import geojson -> postgis]}" "${secs[ogr2ogr geojson -> postgis]}"
  ratio "import csv (postgis)" "${secs[faro import csv -> postgis]}" "${secs[ogr2ogr csv -> postgis]}"
fi
