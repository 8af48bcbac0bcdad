#!/usr/bin/env bash
# Rebuild the demo's territories from the real comuni of the Province of Treviso:
#
#   1. data/treviso_comuni.geojson: the 94 comuni of ISTAT's boundaries (openpolis 2023, CC BY,
#      ../shared/data/istat/boundaries_openpolis_2023/limits_P_26_municipalities.geojson),
#      simplified with mapshaper (npm, pinned below) on its shared arcs, so that neighbouring
#      comuni still share every edge; only the code and the name are kept.
#   2. data/territories.geojson: the four territories of data/treviso_districts.csv and the
#      province, made by faro's own `faro territories define` (the dissolved union of each
#      group's comuni, their population from data/treviso_population_2023.csv) into a scratch
#      store, then written out with `faro export`.
#
#   scripts/make_demo_territories.sh            # rewrite both files
#   scripts/make_demo_territories.sh --check    # rebuild into a scratch directory and compare
#
# Needs node/npx (mapshaper is fetched from npm on first use, or set MAPSHAPER) and a faro binary
# (FARO_BIN, default target/debug/faro). Run scripts/make_demo_data.py afterwards: the
# fictional records are drawn inside these territories.
set -euo pipefail
cd "$(dirname "$0")/.."
mapshaper_version=0.7.70
keep=30%
source=${FARO_COMUNI_SOURCE:-../shared/data/istat/boundaries_openpolis_2023/limits_P_26_municipalities.geojson}
faro=${FARO_BIN:-target/debug/faro}
# MAPSHAPER: a mapshaper command of that version, e.g. node_modules/.bin/mapshaper.
mapshaper=${MAPSHAPER:-npx --yes mapshaper@$mapshaper_version}
check=false
[[ "${1:-}" == "--check" ]] && check=true

[[ -f "$source" ]] || { echo "no $source (see ../shared/data/PROVENANCE.md)" >&2; exit 1; }
[[ -x "$faro" ]] || { echo "no faro binary at $faro (cargo build --bin faro)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=data
$check && out=$tmp/out && mkdir -p "$out"

$mapshaper -i "$source" \
  -simplify "$keep" keep-shapes \
  -filter-fields com_istat_code,name \
  -o "$out/treviso_comuni.geojson" format=geojson rfc7946 precision=0.000001 >/dev/null 2>"$tmp/mapshaper.log" \
  || { cat "$tmp/mapshaper.log" >&2; exit 1; }

"$faro" territories define \
  --comuni "$out/treviso_comuni.geojson" \
  --groups data/treviso_districts.csv \
  --population data/treviso_population_2023.csv \
  --province-id prov-treviso --province-name "Provincia di Treviso" --province-code 026 \
  --database-url "sqlite://$tmp/territories.db"
"$faro" export territories --format geojson -o "$tmp/territories.geojson" \
  --database-url "sqlite://$tmp/territories.db"
# One feature a line, for a readable diff. Server fields (created_at, updated_at, version) are
# dropped; coordinates are rounded to the input's 6 decimals (the union's floating-point noise
# is below 1e-9 degrees), which gives neighbours back their identical shared vertices; the
# note says where the outline comes from.
python3 - "$tmp/territories.geojson" "$out/territories.geojson" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1], encoding="utf-8"))
order = {"province": 0, "territory": 1}
note = ("Dissolved union of ISTAT's comuni (boundaries of 2023 via openpolis, CC BY 4.0), "
        "simplified for the demo: see data/README.md.")

def rounded(c):
    return [rounded(x) for x in c] if isinstance(c[0], list) else [round(v, 6) for v in c]

feats = []
for f in sorted(doc["features"], key=lambda f: (order[f["properties"]["level"]], f["id"])):
    props = {k: v for k, v in f["properties"].items()
             if k not in ("created_at", "updated_at", "version")}
    props["note"] = note
    geometry = {"type": f["geometry"]["type"], "coordinates": rounded(f["geometry"]["coordinates"])}
    feats.append({"type": "Feature", "id": f["id"], "geometry": geometry, "properties": props})
with open(sys.argv[2], "w", encoding="utf-8") as out:
    out.write('{"type": "FeatureCollection", "features": [\n')
    out.write(",\n".join(json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in feats))
    out.write("\n]}\n")
PY

if $check; then
  for f in treviso_comuni.geojson territories.geojson; do
    cmp -s "$out/$f" "data/$f" || { echo "data/$f differs from a fresh build" >&2; exit 1; }
  done
  echo "data/treviso_comuni.geojson and data/territories.geojson match a fresh build"
fi
