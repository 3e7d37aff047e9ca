-- Shared by the bench scripts: one machine-readable line at the end.
-- RESULT <requests> <bytes> <duration_us> <non-2xx/3xx> <socket errors>
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d\n", summary.requests, summary.bytes,
    summary.duration, e.status, e.connect + e.read + e.write + e.timeout))
end
