-- wrk script of the capacity harness.
-- wrk ... -s load.lua URL -- PATHS RATE BODY [START]
--   PATHS  file of request paths, one per line, sent in order (cycling)
--   RATE   requests per second for this thread, paced on a schedule; 0 = as fast as possible
--   BODY   file sent as a POST body (application/json); "-" = GET
--   START  the line to begin at (a measurement that follows a warm-up on the same file
--          starts where the warm-up did not go, so it does not replay the warm-up)
-- Prints one line "WRKJSON {...}" with counts and latency percentiles (µs) in done().
-- Latency is measured by wrk from when a request is written, so under pacing a request
-- that waits for a free connection is not counted as slow: use enough connections.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } timespec_t;
  int clock_gettime(int clk_id, timespec_t *tp);
]]
local ts = ffi.new("timespec_t")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local paths = {}
local count = 0
local index = 0
local interval = 0
local next_due = nil
local method = "GET"
local body = nil

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then
      count = count + 1
      paths[count] = line
    end
  end
  local rate = tonumber(args[2] or "0")
  if rate > 0 then interval = 1000 / rate end
  index = (tonumber(args[4] or "0") % count)
  if args[3] and args[3] ~= "-" then
    local file = assert(io.open(args[3], "rb"))
    body = file:read("*a")
    file:close()
    method = "POST"
    wrk.headers["Content-Type"] = "application/json"
  end
end

function delay()
  if interval == 0 then return 0 end
  local now = now_ms()
  if next_due == nil or next_due < now - 100 then
    -- start, or fell far behind: restart the schedule rather than burst to catch up
    next_due = now
  end
  local due = next_due
  next_due = next_due + interval
  if due <= now then return 0 end
  return due - now
end

function request()
  index = index + 1
  if index > count then index = 1 end
  return wrk.format(method, paths[index], nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
end
