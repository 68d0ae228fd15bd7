SELECT DISTINCT Route FROM cache_events WHERE Route != '' AND $__timeFilter(Timestamp) ORDER BY Route
