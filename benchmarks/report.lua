-- wrk calls done() once at the end: print the exact figures as one JSON line for wrk.py
-- (wrk's own text output rounds them and has no machine-readable form).
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "\nHASHSTACK-WRK {\"requests\": %d, \"duration_us\": %d, \"connect\": %d, \"read\": %d, " ..
    "\"write\": %d, \"status\": %d, \"timeout\": %d, \"p50_us\": %d, \"p90_us\": %d, " ..
    "\"p99_us\": %d, \"max_us\": %d, \"mean_us\": %.1f}\n",
    summary.requests, summary.duration, errors.connect, errors.read, errors.write,
    errors.status, errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
