#!/usr/bin/env python3
"""Generate tests/fixtures/coverage_reference.json, an independent oracle for faro's coverage.

Synthetic territories near Treviso (WGS84 lon/lat), services and settlements drawn with
random.Random(20261201), and for several (kinds, radius) cases, per territory:

- area_km2: pyproj Geod(ellps="WGS84").geometry_area_perimeter of the territory (geodesic
  edges, Karney's algorithm in PROJ);
- covered_area_km2: the same of territory ∩ union of the catchment discs, where a disc is the
  polygon of 1,440 points at radius_m from the service along geodesics (Geod.fwd), and union
  and intersection are shapely's (GEOS) in lon/lat;
- settlements / covered / people / people_covered: a settlement is in a territory when
  shapely says the territory intersects its point, and covered when its geodesic distance
  (Geod.inv) to some chosen service is at most radius_m.

No code of faro or of its Rust dependencies is used. The Rust test (tests/coverage.rs) builds
the same records, asks faro, and compares: areas within 0.5 %, counts exactly.

    python3 -m venv target/coverage-venv
    target/coverage-venv/bin/pip install pyproj shapely
    target/coverage-venv/bin/python scripts/make_coverage_reference.py [OUTPUT | --check]

Written with pyproj 3.7.2 / shapely 2.2.0 (Python 3.11.7); deterministic output.
"""

import json
import math
import random
import sys
from pathlib import Path

from pyproj import Geod
from shapely.geometry import MultiPolygon, Point, Polygon, mapping, shape
from shapely.geometry.polygon import orient
from shapely.ops import unary_union

GEOD = Geod(ellps="WGS84")
DISC_POINTS = 1440
KINDS = ["focal_point", "pas", "shelter", "help_desk"]


def disc(lon, lat, radius_m):
    azimuths = [360.0 * i / DISC_POINTS for i in range(DISC_POINTS)]
    lons, lats, _ = GEOD.fwd(
        [lon] * DISC_POINTS, [lat] * DISC_POINTS, azimuths, [radius_m] * DISC_POINTS
    )
    return Polygon(list(zip(lons, lats)))


def area_km2(geometry):
    """Geodesic area; pyproj adds the signed areas of the rings, so every polygon is first
    oriented counter-clockwise with clockwise holes (GEOS output may be either way)."""
    if geometry.is_empty:
        return 0.0
    parts = geometry.geoms if hasattr(geometry, "geoms") else [geometry]
    total = 0.0
    for part in parts:
        if part.geom_type != "Polygon" or part.is_empty:
            continue
        area, _ = GEOD.geometry_area_perimeter(orient(part, sign=1.0))
        total += area
    return total / 1e6


def territories():
    """Three territories: a plain box, a concave polygon with a hole, a two-part
    multipolygon. Coordinates rounded to 1e-6 degrees (what faro stores as given)."""
    box = Polygon([(11.80, 45.55), (12.10, 45.55), (12.10, 45.80), (11.80, 45.80)])
    concave = Polygon(
        [(12.10, 45.55), (12.55, 45.55), (12.55, 45.95), (12.35, 45.95), (12.35, 45.70),
         (12.20, 45.70), (12.20, 45.95), (12.10, 45.95)],
        [[(12.40, 45.60), (12.50, 45.60), (12.50, 45.66), (12.40, 45.66)]],
    )
    multi = MultiPolygon([
        Polygon([(11.80, 45.80), (12.05, 45.80), (12.00, 46.05), (11.85, 46.02)]),
        Polygon([(12.22, 45.75), (12.33, 45.75), (12.33, 45.90), (12.22, 45.90)]),
    ])
    return [("terr-box", box), ("terr-concave", concave), ("terr-multi", multi)]


def treviso(out):
    """The real comuni of Treviso (openpolis 2023, from ../shared/data), each a territory; 20
    services and 1,000 settlements seeded over the province's box; radius 8 km. Only the
    draws and the answers are written: the Rust test reads the comuni from the same file."""
    root = Path(__file__).resolve().parent.parent
    rel = "data/istat/boundaries_openpolis_2023/limits_P_26_municipalities.geojson"
    found = [root / up / rel for up in ("../shared", "../../shared") if (root / up / rel).is_file()]
    if not found:
        print(f"skipped the Treviso reference: no ../shared/{rel}")
        return
    comuni = json.loads(found[0].read_text())["features"]
    shapes = [(c["properties"]["com_istat_code"], shape(c["geometry"])) for c in comuni]
    minx = min(g.bounds[0] for _, g in shapes)
    miny = min(g.bounds[1] for _, g in shapes)
    maxx = max(g.bounds[2] for _, g in shapes)
    maxy = max(g.bounds[3] for _, g in shapes)
    rng = random.Random(20261202)
    services = [
        {"id": f"svc-{i:02d}", "kind": "pas", "lon": round(rng.uniform(minx, maxx), 6),
         "lat": round(rng.uniform(miny, maxy), 6)}
        for i in range(20)
    ]
    settlements = [
        {"id": f"set-{i:04d}", "lon": round(rng.uniform(minx, maxx), 6),
         "lat": round(rng.uniform(miny, maxy), 6), "population": rng.randint(0, 300)}
        for i in range(1000)
    ]
    radius_m = 8_000.0
    union = unary_union([disc(s["lon"], s["lat"], radius_m) for s in services])
    rows = []
    for code, geometry in shapes:
        row = {"code": code, "area_km2": area_km2(geometry),
               "covered_area_km2": area_km2(geometry.intersection(union)),
               "settlements": 0, "covered": 0, "people": 0, "people_covered": 0}
        for p in settlements:
            if not geometry.intersects(Point(p["lon"], p["lat"])):
                continue
            nearest = min(GEOD.inv(s["lon"], s["lat"], p["lon"], p["lat"])[2] for s in services)
            assert abs(nearest - radius_m) > 1e-3, (p, radius_m)
            row["settlements"] += 1
            row["people"] += p["population"]
            if nearest <= radius_m:
                row["covered"] += 1
                row["people_covered"] += p["population"]
        rows.append(row)
    doc = {
        "about": "Generated by scripts/make_coverage_reference.py from ../shared/" + rel,
        "radius_m": radius_m, "services": services, "settlements": settlements,
        "comuni": rows,
    }
    out.write_text(json.dumps(doc, indent=1) + "\n")


def main():
    fixtures = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
    if sys.argv[1:] == ["--check"]:
        # Regenerate into a scratch folder and compare with the checked-in fixtures.
        import tempfile
        with tempfile.TemporaryDirectory() as scratch:
            scratch = Path(scratch)
            synthetic(scratch / "coverage_reference.json")
            treviso(scratch / "coverage_treviso_reference.json")
            stale = [
                f.name for f in scratch.iterdir()
                if f.read_text() != (fixtures / f.name).read_text()
            ]
        if stale:
            sys.exit(f"stale fixtures (rerun this script): {', '.join(stale)}")
        print("coverage fixtures are what the oracle computes")
        return
    treviso(fixtures / "coverage_treviso_reference.json")
    synthetic(Path(sys.argv[1]) if len(sys.argv) > 1 else fixtures / "coverage_reference.json")


def synthetic(out):
    rng = random.Random(20261201)
    terrs = territories()
    services = []
    for i in range(14):
        services.append({
            "id": f"svc-{i:02d}",
            "kind": KINDS[i % len(KINDS)],
            "lon": round(rng.uniform(11.75, 12.60), 6),
            "lat": round(rng.uniform(45.50, 46.10), 6),
        })
    settlements = []
    for i in range(400):
        settlements.append({
            "id": f"set-{i:03d}",
            "lon": round(rng.uniform(11.78, 12.57), 6),
            "lat": round(rng.uniform(45.53, 46.07), 6),
            "population": rng.randint(0, 300),
        })
    cases = []
    for kinds, radius_m in [
        (["focal_point", "pas"], 3_000.0),
        (["focal_point", "pas"], 8_000.0),
        (KINDS, 12_500.0),
        (["shelter"], 25_000.0),
        (["help_desk"], 60_000.0),
    ]:
        chosen = [s for s in services if s["kind"] in kinds]
        union = unary_union([disc(s["lon"], s["lat"], radius_m) for s in chosen])
        rows = []
        for tid, geometry in terrs:
            row = {
                "id": tid,
                "area_km2": area_km2(geometry),
                "covered_area_km2": area_km2(geometry.intersection(union)),
                "settlements": 0, "covered": 0, "people": 0, "people_covered": 0,
            }
            for p in settlements:
                if not geometry.intersects(Point(p["lon"], p["lat"])):
                    continue
                nearest = min(
                    GEOD.inv(s["lon"], s["lat"], p["lon"], p["lat"])[2] for s in chosen
                )
                # Keep clear of ties at the radius: both sides compute geodesics to ~1e-9 m.
                assert abs(nearest - radius_m) > 1e-3, (p, radius_m)
                row["settlements"] += 1
                row["people"] += p["population"]
                if nearest <= radius_m:
                    row["covered"] += 1
                    row["people_covered"] += p["population"]
            rows.append(row)
        cases.append({"kinds": kinds, "radius_m": radius_m, "territories": rows})
    doc = {
        "about": "Generated by scripts/make_coverage_reference.py (pyproj Geod, shapely); see its docstring.",
        "territories": [{"id": t, "geometry": mapping(g)} for t, g in terrs],
        "services": services,
        "settlements": settlements,
        "cases": cases,
    }
    out.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
