#!/usr/bin/env bash
# Small import fixtures for tests/import.rs, made with GDAL's ogr2ogr (gdal-bin) from
# tests/fixtures/import/comuni_wgs84.geojson: three fictional square "comuni" near Treviso,
# not real boundaries. Run from the repository root; needs ogr2ogr and zip.
#
#   comuni_32632.zip  a zipped Shapefile in WGS 84 / UTM 32N (as ISTAT publishes), DBF in
#                     Windows-1252 with a .cpg, ESRI .prj written by GDAL
#   comuni_25833.gpkg a GeoPackage in ETRS89 / UTM 33N
set -euo pipefail
dir=tests/fixtures/import
src=$dir/comuni_wgs84.geojson
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ogr2ogr -f "ESRI Shapefile" -t_srs EPSG:32632 -lco ENCODING=CP1252 -nln comuni "$tmp/comuni.shp" "$src"
rm -f "$dir/comuni_32632.zip"
(cd "$tmp" && zip -q -X comuni.zip comuni.shp comuni.shx comuni.dbf comuni.prj comuni.cpg)
cp "$tmp/comuni.zip" "$dir/comuni_32632.zip"
rm -f "$dir/comuni_25833.gpkg"
ogr2ogr -f GPKG -t_srs EPSG:25833 -lco SPATIAL_INDEX=NO -nln comuni "$dir/comuni_25833.gpkg" "$src"
ls -l "$dir"
