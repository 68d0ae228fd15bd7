-- The routes seen in the time range; ${table} is the dashboard's table (cache_events or requests).
SELECT DISTINCT Route FROM ${table} WHERE Route != '' AND $__timeFilter(Timestamp) ORDER BY Route
