-- SPDX-License-Identifier: MIT
-- wrk script for bench/request-path: one fixed request, from the environment.
--
--   WRK_METHOD   the method (default POST)
--   WRK_BODY     the request body (default none)
--   WRK_HEADERS  extra request headers, one "Name: value" a line
--
-- The request is built once per thread (no request() function), so the
-- script costs wrk nothing per request.  Credentials travel in the
-- environment, never on a command line.  done() prints one summary line,
--
--   wrk-post: requests=N bytes=N non2xx=N connect=N read=N write=N timeout=N
--
-- which bench/request-path reads for its error checks (it reads Requests/sec
-- and the 99% latency from wrk's own report).

wrk.method = os.getenv("WRK_METHOD") or "POST"

local body = os.getenv("WRK_BODY")
if body ~= nil and body ~= "" then
   wrk.body = body
end

local headers = os.getenv("WRK_HEADERS")
if headers ~= nil then
   for line in headers:gmatch("[^\r\n]+") do
      local name, value = line:match("^%s*([^:]+):%s*(.-)%s*$")
      if name ~= nil then
         wrk.headers[name] = value
      end
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "wrk-post: requests=%d bytes=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
      summary.requests, summary.bytes, e.status, e.connect, e.read, e.write,
      e.timeout))
end
