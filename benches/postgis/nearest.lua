-- wrk script: GET /nearest?k=5 from uniformly random points over Italy (seeded).
math.randomseed(42)
request = function()
  local lon = 6.6 + 12.0 * math.random()
  local lat = 36.6 + 10.5 * math.random()
  return wrk.format("GET", string.format("/nearest?lon=%.6f&lat=%.6f&k=5", lon, lat))
end
