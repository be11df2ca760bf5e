-- wrk script of benchmarks/gateway.py: paced single-customer lookups rotating over many ids.
--
-- Arguments (after wrk's "--"): target ("churnwire" or "feast"), a file of customer ids (one a
-- line), the total rate in requests/s (0 = as fast as the connections go), the thread count,
-- then the API key (churnwire) or a file of feature references, one a line (feast).
--
-- Pacing: each thread hands out send times on a fixed schedule (its share of the rate); a
-- connection that finishes a request waits for the next free send time. A schedule that falls
-- behind (every connection busy) restarts at the current time instead of bursting to catch up,
-- so an overloaded server shows up as a lower achieved rate: the caller checks it.
-- wrk's latency is measured from the moment a request is written to its complete response.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } cw_timespec;
int clock_gettime(int clock_id, cw_timespec *now);
]]
local CLOCK_MONOTONIC = 1
local clock_value = ffi.new("cw_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock_value)
  return tonumber(clock_value.tv_sec) * 1000 + tonumber(clock_value.tv_nsec) / 1e6
end

local function read_lines(path)
  local lines = {}
  for line in io.lines(path) do
    if line ~= "" then
      lines[#lines + 1] = line
    end
  end
  return lines
end

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
  threads[#threads + 1] = thread
end

local requests = {}
local position = 1
local interval_ms = 0
local next_send = 0

local function feast_body(customer_id, feature_refs)
  local quoted = {}
  for index, ref in ipairs(feature_refs) do
    quoted[index] = '"' .. ref .. '"'
  end
  return '{"features":[' .. table.concat(quoted, ",") .. '],"entities":{"customer_id":["'
    .. customer_id .. '"]}}'
end

function init(args)
  local target, ids_path, rate, thread_total, extra = args[1], args[2], tonumber(args[3]),
    tonumber(args[4]), args[5]
  local ids = read_lines(ids_path)
  if target == "churnwire" then
    local headers = { ["Authorization"] = "Bearer " .. extra }
    for index, customer_id in ipairs(ids) do
      requests[index] = wrk.format("GET", "/v1/customers/" .. customer_id, headers)
    end
  elseif target == "feast" then
    local feature_refs = read_lines(extra)
    local headers = { ["Content-Type"] = "application/json" }
    for index, customer_id in ipairs(ids) do
      requests[index] = wrk.format("POST", "/get-online-features", headers,
        feast_body(customer_id, feature_refs))
    end
  else
    error("unknown target " .. tostring(target))
  end
  -- Threads start at different places in the id list so they do not ask in lockstep.
  position = (thread_index * math.floor(#requests / thread_total)) % #requests + 1
  if rate > 0 then
    interval_ms = 1000 * thread_total / rate
  end
end

function request()
  local chosen = requests[position]
  position = position % #requests + 1
  return chosen
end

function delay()
  if interval_ms == 0 then
    return 0
  end
  local now = now_ms()
  if next_send < now then
    next_send = now
  end
  local wait = next_send - now
  next_send = next_send + interval_ms
  return wait
end

function done(summary, latency, _)
  local errors = summary.errors
  io.write(string.format(
    'CWRESULT {"requests":%d,"bytes":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,'
      .. '"p999_us":%d,"max_us":%d,"mean_us":%.1f,"errors_connect":%d,"errors_read":%d,'
      .. '"errors_write":%d,"errors_status":%d,"errors_timeout":%d}\n',
    summary.requests, summary.bytes, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
