-- wrk script: POSTs pre-signed webhooks, each thread cycling through its share of a file
-- that tests/benchmarks/wrk.py writes (one request a line: path, body, then
-- "name: value" headers, tab-separated). Environment:
--   WRK_REQUESTS  the file
--   WRK_THREADS   wrk's -t (each thread takes every WRK_THREADS-th request)
--   WRK_RATE      requests/s for all threads together; 0 or unset: as fast as possible
-- done() prints one line, "BENCH_JSON {…}", with the counts and latency percentiles.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local clock = ffi.new("bench_timespec")

local function now_ms()
	ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
	return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local threads = tonumber(os.getenv("WRK_THREADS") or "1")
local rate = tonumber(os.getenv("WRK_RATE") or "0") or 0

-- Main state: number the threads, so each takes its own share of the requests.
local created = 0
function setup(thread)
	thread:set("id", created)
	created = created + 1
end

-- Thread states.
local prepared = {}
local index = 0

function init(args)
	local share = id or 0
	local n = 0
	for line in io.lines(os.getenv("WRK_REQUESTS")) do
		if n % threads == share then
			local fields = {}
			for field in string.gmatch(line, "[^\t]+") do
				fields[#fields + 1] = field
			end
			local headers = {}
			for i = 3, #fields do
				local name, value = string.match(fields[i], "^([^:]+): (.*)$")
				headers[name] = value
			end
			prepared[#prepared + 1] = wrk.format("POST", fields[1], headers, fields[2])
		end
		n = n + 1
	end
	if #prepared == 0 then
		error("no requests for thread " .. share .. " in " .. os.getenv("WRK_REQUESTS"))
	end
end

function request()
	index = index % #prepared + 1
	return prepared[index]
end

if rate > 0 then
	-- A constant rate: each thread hands out send slots WRK_THREADS / WRK_RATE apart to
	-- whichever of its connections asks next; one that fell behind by over a second
	-- starts afresh rather than bursting to catch up.
	local interval = 1000 * threads / rate
	local slot = nil
	function delay()
		local now = now_ms()
		if slot == nil or now - slot > 1000 then
			slot = now
		end
		local wait = slot - now
		slot = slot + interval
		if wait < 0 then
			return 0
		end
		return wait
	end
end

function done(summary, latency, _requests)
	local e = summary.errors
	io.write(
		string.format(
			'BENCH_JSON {"requests": %d, "duration_us": %d, "errors": {"connect": %d, '
				.. '"read": %d, "write": %d, "status": %d, "timeout": %d}, "latency_us": '
				.. '{"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
			summary.requests,
			summary.duration,
			e.connect,
			e.read,
			e.write,
			e.status,
			e.timeout,
			latency:percentile(50),
			latency:percentile(90),
			latency:percentile(99),
			latency.max,
			latency.mean
		)
	)
end
