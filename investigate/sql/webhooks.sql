-- When revalidation webhooks arrived (the requests of kind webhook), in Unix ms: the report
-- marks them on its timelines. The first 500.
SELECT toUnixTimestamp64Milli(Timestamp) AS at_ms
FROM requests
WHERE Kind = 'webhook' AND Sign = 1 AND __WINDOW__
ORDER BY at_ms
LIMIT 500
