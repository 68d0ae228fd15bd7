SELECT DISTINCT BuildId FROM cache_events WHERE BuildId != '' AND $__timeFilter(Timestamp) ORDER BY BuildId
