SELECT DISTINCT Route AS route FROM requests
WHERE route != '' AND $__timeFilter(Timestamp)
ORDER BY route
