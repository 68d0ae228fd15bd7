SELECT DISTINCT BuildId AS build FROM requests
WHERE build != '' AND $__timeFilter(Timestamp)
ORDER BY build
