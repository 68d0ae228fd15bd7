SELECT DISTINCT ServiceName FROM cache_events WHERE $__timeFilter(Timestamp) ORDER BY ServiceName
