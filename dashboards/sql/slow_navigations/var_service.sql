SELECT DISTINCT ServiceName FROM requests WHERE $__timeFilter(Timestamp) ORDER BY ServiceName
