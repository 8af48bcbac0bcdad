#!/usr/bin/env python3
"""Control points for faro's reprojection to WGS84, computed with pyproj (PROJ).

Writes tests/fixtures/crs_control_points.csv: for each coordinate system faro reads, points
across Italy given in that system (x, y) with the WGS84 longitude and latitude PROJ computes
for them. faro's own transformation (proj4rs) must land within 0.1 m of each.

Monte Mario (EPSG 3003, 3004) has several published transformations to WGS84; PROJ would pick
one by area. The points use "Monte Mario to WGS 84 (4)" (EPSG:1660, Italy mainland, a
7-parameter position-vector Helmert), the one faro implements, chosen explicitly so that the
file does not depend on where each point falls.

Run from the repository root:  python3 scripts/make_crs_control_points.py
(needs pyproj; the test suite only reads the CSV).
"""

import csv
import sys

import pyproj
from pyproj.transformer import TransformerGroup

EPSG = [32632, 32633, 25832, 25833, 6707, 6708, 3003, 3004, 3857]

# lon, lat: Aosta, Torino, Milano, Treviso, Venezia, Firenze, Roma, Napoli, Bari, Lecce,
# Reggio Calabria, Palermo, Cagliari, Lampedusa.
PLACES = [
    (7.3154, 45.7370), (7.6869, 45.0703), (9.1900, 45.4642), (12.2430, 45.6669),
    (12.3155, 45.4408), (11.2558, 43.7696), (12.4964, 41.9028), (14.2681, 40.8518),
    (16.8719, 41.1171), (18.1710, 40.3516), (15.6613, 38.1144), (13.3615, 38.1157),
    (9.1217, 39.2238), (12.6056, 35.5070),
]


def transformer(epsg):
    if epsg in (3003, 3004):
        group = TransformerGroup(f"EPSG:{epsg}", "EPSG:4326", always_xy=True)
        chosen = [t for t in group.transformers if "Monte Mario to WGS 84 (4)" in t.description]
        if len(chosen) != 1:
            sys.exit(f"EPSG:{epsg}: Monte Mario to WGS 84 (4) not found among {group.transformers}")
        return chosen[0]
    return pyproj.Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True)


def main():
    rows = []
    for epsg in EPSG:
        t = transformer(epsg)
        for lon, lat in PLACES:
            x, y = t.transform(lon, lat, direction="INVERSE")
            # The reference is PROJ's inverse of the projected point, so the file is exact
            # for the direction faro uses (projected -> WGS84).
            ref_lon, ref_lat = t.transform(x, y)
            rows.append((epsg, repr(x), repr(y), repr(ref_lon), repr(ref_lat), t.description))
    with open("tests/fixtures/crs_control_points.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["epsg", "x", "y", "lon", "lat", "transformation"])
        w.writerows(rows)
    print(f"{len(rows)} points, pyproj {pyproj.__version__}, PROJ {pyproj.proj_version_str}")


if __name__ == "__main__":
    main()
