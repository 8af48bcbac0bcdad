-- pgbench script: the PostGIS KNN equivalent of faro's /nearest?k=5, through the GiST index,
-- returning what faro returns (id, properties, geometry, geodesic distance in metres).
\set lon_u random(6600000, 18600000)
\set lat_u random(36600000, 47100000)
SELECT id, properties, ST_AsBinary(geom),
       ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(:lon_u / 1e6, :lat_u / 1e6), 4326)::geography) AS distance_m
  FROM records
 WHERE collection = 'services'
 ORDER BY geom <-> ST_SetSRID(ST_MakePoint(:lon_u / 1e6, :lat_u / 1e6), 4326)
 LIMIT 5;
