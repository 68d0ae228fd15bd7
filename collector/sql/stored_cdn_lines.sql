-- Which of a CDN delivery's log lines the traces table holds: the span ids, among the given
-- ones, of the spans the lines made (a lookup, or a background revalidation:
-- collector/ingest/cdn.py), within the delivery's
-- time range (which prunes partitions and granules). A line's lookup span id depends on the
-- line alone, whatever trace the line was joined to.
SELECT SpanId
FROM `${database}`.`${table}`
WHERE Timestamp BETWEEN fromUnixTimestamp64Nano({first_ns:Int64}) AND fromUnixTimestamp64Nano({last_ns:Int64})
  AND ScopeName = 'nextrace.cdn'
  AND SpanId IN {span_ids:Array(String)}
