-- Which spans of a batch the traces table holds: (TraceId, SpanId) pairs among the given ids,
-- within the batch's time range (which prunes partitions and granules). The exporter asks
-- this of a batch whose earlier insert may have been stored (see collector/storage/exporter.py).
SELECT TraceId, SpanId
FROM `${database}`.`${table}`
WHERE Timestamp BETWEEN fromUnixTimestamp64Nano({first_ns:Int64}) AND fromUnixTimestamp64Nano({last_ns:Int64})
  AND TraceId IN {trace_ids:Array(String)}
  AND SpanId IN {span_ids:Array(String)}
