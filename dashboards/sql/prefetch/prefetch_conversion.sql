-- Prefetches the browsers made, and how many a later navigation used: a router-cache lookup
-- that found the entry the prefetch filled and served it whole (a hit) or its loading state
-- first (a partial hit: a miss that names no reason, as the entry was there). Trace ids are
-- matched by their 64-bit hashes, which halves the time over a day of prefetches (a collision
-- among a million ids has odds of about 1 in 10 million).
WITH used AS (
    SELECT DISTINCT cityHash64(EntrySourceTraceId) AS trace_hash
    FROM cache_events
    WHERE $__timeFilter(Timestamp)
      AND Layer = 'router'
      AND (Result = 'hit' OR (Result = 'miss' AND Reason = ''))
      AND EntrySource = 'prefetch'
)
SELECT
    count() AS prefetches,
    countIf(cityHash64(TraceId) IN (SELECT trace_hash FROM used)) AS used,
    prefetches - used AS never_used,
    round(used / greatest(prefetches, 1), 4) AS conversion
FROM lifecycle_spans
WHERE $__timeFilter(Timestamp)
  AND Phase = 'prefetch'
  AND IsRoot
  AND $__conditionalAll(Route IN (${route:singlequote}), $route)
