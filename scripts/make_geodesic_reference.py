#!/usr/bin/env python3
"""Generate tests/fixtures/geodesic_reference.csv, an independent geodesic oracle.

Every row is a pair of points on the WGS84 ellipsoid with the geodesic distance
(metres) and the forward azimuth at the first point (degrees clockwise from
north), both computed by geographiclib (C. F. F. Karney, "Algorithms for
geodesics", J. Geodesy 87, 43-55, 2013), the reference implementation.

Columns: lon1,lat1,lon2,lat2,distance_m,azi1_deg (longitude first; degrees;
WGS84). Floats are written with repr(), the shortest string that round-trips to
the same f64, so a reader parsing them gets exactly the inputs used here.
distance_m and azi1_deg are always computed by Inverse from the values as
written, never carried over from a Direct call.

Rows, in order:
  1. 150 pairs inside Italy's bbox (lon 6.6..18.6, lat 35.5..47.1): the second
     point comes from Direct(first, random azimuth, distance log-uniform in
     1 m..50 km), redrawn until it also lies in the bbox;
  2. 60 pairs uniform in the Province of Treviso bbox
     (lon 11.74..12.69, lat 45.53..46.08);
  3. 60 pairs anywhere (lat -89..89): 30 independent uniform pairs and 30 from
     Direct with distance uniform in 100 km..19,000 km (lat2 kept in -89..89);
  4. 30 hand-picked edge cases (coincident points, equator, poles, antipodal
     and nearly antipodal pairs, antimeridian crossings, 1 mm and 1 m apart).

Only needed to regenerate the fixture; the Rust tests just read the CSV.

    pip install geographiclib
    python3 scripts/make_geodesic_reference.py [OUTPUT]

OUTPUT defaults to tests/fixtures/geodesic_reference.csv next to this script's
repository root. The output is deterministic (random.Random(20261125)).
"""

import math
import random
import sys
from pathlib import Path

import geographiclib
from geographiclib.geodesic import Geodesic

SEED = 20261125
GEOD = Geodesic.WGS84

ITALY = (6.6, 18.6, 35.5, 47.1)  # lon_min, lon_max, lat_min, lat_max
TREVISO = (11.74, 12.69, 45.53, 46.08)

HEADER = "lon1,lat1,lon2,lat2,distance_m,azi1_deg"


def inside(bbox, lon, lat):
    lon_min, lon_max, lat_min, lat_max = bbox
    return lon_min <= lon <= lon_max and lat_min <= lat <= lat_max


def random_point(rng, bbox):
    lon_min, lon_max, lat_min, lat_max = bbox
    return rng.uniform(lon_min, lon_max), rng.uniform(lat_min, lat_max)


def direct(lon1, lat1, azi1, s12):
    """(lon2, lat2) reached from (lon1, lat1) along azi1 for s12 metres."""
    r = GEOD.Direct(lat1, lon1, azi1, s12)
    return r["lon2"], r["lat2"]


def row(lon1, lat1, lon2, lat2):
    # geographiclib takes latitude first; the CSV is longitude first.
    r = GEOD.Inverse(lat1, lon1, lat2, lon2)
    values = (lon1, lat1, lon2, lat2, r["s12"], r["azi1"])
    for v in values:
        if not math.isfinite(v):
            raise ValueError(f"non-finite value in row {values}")
    return ",".join(repr(float(v)) for v in values)


def italy_pairs(rng, n):
    out = []
    log_min, log_max = math.log(1.0), math.log(50_000.0)
    while len(out) < n:
        lon1, lat1 = random_point(rng, ITALY)
        azi = rng.uniform(-180.0, 180.0)
        s12 = math.exp(rng.uniform(log_min, log_max))
        lon2, lat2 = direct(lon1, lat1, azi, s12)
        if inside(ITALY, lon2, lat2):
            out.append(row(lon1, lat1, lon2, lat2))
    return out


def treviso_pairs(rng, n):
    out = []
    for _ in range(n):
        lon1, lat1 = random_point(rng, TREVISO)
        lon2, lat2 = random_point(rng, TREVISO)
        out.append(row(lon1, lat1, lon2, lat2))
    return out


def world_pairs(rng, n):
    world = (-180.0, 180.0, -89.0, 89.0)
    out = []
    for _ in range(n // 2):
        lon1, lat1 = random_point(rng, world)
        lon2, lat2 = random_point(rng, world)
        out.append(row(lon1, lat1, lon2, lat2))
    while len(out) < n:
        lon1, lat1 = random_point(rng, world)
        azi = rng.uniform(-180.0, 180.0)
        s12 = rng.uniform(100_000.0, 19_000_000.0)
        lon2, lat2 = direct(lon1, lat1, azi, s12)
        if -89.0 <= lat2 <= 89.0:
            out.append(row(lon1, lat1, lon2, lat2))
    return out


def edge_cases():
    treviso = (12.2429, 45.6669)  # Treviso city centre
    pairs = [
        # coincident points (distance 0; azimuth is a convention, see README)
        (0.0, 0.0, 0.0, 0.0),
        treviso + treviso,
        (-73.8, 40.6, -73.8, 40.6),
        # same pole written with different longitudes (distance 0)
        (0.0, 90.0, 123.0, 90.0),
        # on the equator
        (0.0, 0.0, 1.0, 0.0),
        (0.0, 0.0, 90.0, 0.0),
        (-30.0, 0.0, 120.0, 0.0),
        (0.0, 0.0, 179.0, 0.0),
        (0.0, 0.0, 179.8, 0.0),  # beyond the equatorial limit: geodesic leaves the equator
        # poles
        (0.0, 90.0, 0.0, -90.0),
        (0.0, 90.0, 45.0, 89.0),
        (0.0, -90.0, 12.2429, 45.6669),
        (12.2429, 45.6669, 0.0, 90.0),
        (-60.0, 89.9, 120.0, 89.9),  # across the north pole
        # antipodal and nearly antipodal
        (0.0, 0.0, 180.0, 0.0),
        (0.0, 45.0, 180.0, -45.0),
        (0.0, 0.0, 179.5, 0.5),
        (0.0, 0.0, 179.5, -0.5),
        (12.2429, 45.6669, -167.7571, -45.6669),  # Treviso's antipode
        (10.0, 30.0, -170.5, -29.5),
        # across the antimeridian
        (179.9, 0.0, -179.9, 0.0),
        (179.9, 45.0, -179.9, 45.1),
        (-179.99, -30.0, 179.99, -30.0),
        (180.0, 10.0, -180.0, 10.0),  # same meridian written two ways (distance 0)
        (170.0, -40.0, -170.0, -35.0),
    ]
    rows = [row(*p) for p in pairs]
    # tiny separations, built with Direct then measured by Inverse
    for lon1, lat1, azi, s12 in [
        (treviso[0], treviso[1], 37.0, 0.001),  # 1 mm in Treviso
        (0.0, 0.0, 90.0, 0.001),  # 1 mm along the equator
        (treviso[0], treviso[1], 0.0, 0.001),  # 1 mm due north
        (treviso[0], treviso[1], 123.0, 1.0),  # 1 m
        (18.5, 40.0, -45.0, 0.01),  # 1 cm in Apulia
    ]:
        lon2, lat2 = direct(lon1, lat1, azi, s12)
        rows.append(row(lon1, lat1, lon2, lat2))
    return rows


def main():
    repo = Path(__file__).resolve().parent.parent
    default = repo / "tests" / "fixtures" / "geodesic_reference.csv"
    out_path = Path(sys.argv[1]) if len(sys.argv) > 1 else default

    rng = random.Random(SEED)
    rows = []
    rows += italy_pairs(rng, 150)
    rows += treviso_pairs(rng, 60)
    rows += world_pairs(rng, 60)
    rows += edge_cases()

    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "w", encoding="ascii", newline="\n") as f:
        f.write(HEADER + "\n")
        for r in rows:
            f.write(r + "\n")
    print(f"wrote {len(rows)} rows to {out_path} (geographiclib {geographiclib.__version__})")


if __name__ == "__main__":
    main()
