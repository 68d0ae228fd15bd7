-- The builds seen in the time range; ${table} is the dashboard's table (cache_events or requests).
SELECT DISTINCT BuildId FROM ${table} WHERE BuildId != '' AND $__timeFilter(Timestamp) ORDER BY BuildId
