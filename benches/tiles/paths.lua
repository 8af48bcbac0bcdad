-- wrk script: GET each path of $TILE_PATHS in turn (one per line), each thread from its own
-- offset; $TILE_ENCODING (gzip or empty) sets Accept-Encoding.
local paths = {}
for line in io.lines(os.getenv("TILE_PATHS")) do
  paths[#paths + 1] = line
end
local encoding = os.getenv("TILE_ENCODING") or ""
local counter = 0
local threads = 0

setup = function(thread)
  thread:set("offset", threads * 7919)
  threads = threads + 1
end

request = function()
  counter = counter + 1
  local path = paths[((offset or 0) + counter) % #paths + 1]
  local headers = {}
  if encoding ~= "" then
    headers["Accept-Encoding"] = encoding
  end
  return wrk.format("GET", path, headers)
end
