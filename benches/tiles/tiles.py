"""Tile lists for benches/tiles/run.sh: random tiles over Italy at z 8-14, around towns
drawn from GeoNames (towns of 500+ people, so the tiles follow where people live across the
provinces), seeded. Prints `z/x/y` lines."""
import csv, math, random, sys

def tile(z, lon, lat):
    n = 2 ** z
    x = int((lon + 180.0) / 360.0 * n)
    r = math.radians(lat)
    y = int((1.0 - math.asinh(math.tan(r)) / math.pi) / 2.0 * n)
    return z, min(max(x, 0), n - 1), min(max(y, 0), n - 1)

towns_csv, count, zmin, zmax = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(20261201)
with open(towns_csv, newline="") as f:
    towns = [(float(r["longitude"]), float(r["latitude"])) for r in csv.DictReader(f)]
for _ in range(count):
    lon, lat = rng.choice(towns)
    # Somewhere within about 5 km of the town.
    lon += rng.uniform(-0.06, 0.06)
    lat += rng.uniform(-0.045, 0.045)
    print("%d/%d/%d" % tile(rng.randint(zmin, zmax), lon, lat))
