-- When revalidation webhooks arrived (the requests of kind webhook), in Unix ms: the report
-- marks the first 500 on its timelines, and counts them all (total).
SELECT toUnixTimestamp64Milli(Timestamp) AS at_ms, count() OVER () AS total
FROM requests
WHERE Kind = 'webhook' AND Sign = 1 AND __WINDOW__
ORDER BY at_ms
LIMIT 500
