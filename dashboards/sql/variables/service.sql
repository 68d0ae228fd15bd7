-- The services seen in the time range; ${table} is the dashboard's table (cache_events or requests).
SELECT DISTINCT ServiceName FROM ${table} WHERE $__timeFilter(Timestamp) ORDER BY ServiceName
