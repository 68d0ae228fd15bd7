-- Next.js 15's middleware passes that came in a trace of their own (the request had no
-- traceparent): every span of the traces of the services {services} whose request spans,
-- started between {start_ns} and {end_ns}, are all passes (next.bubble) with no request in
-- them. investigate.spans joins each to the request it let go on (collector.nextjs.mapping.pass_of).
WITH fromUnixTimestamp64Nano({start_ns:Int64}) AS range_start,
     fromUnixTimestamp64Nano({end_ns:Int64}) AS range_end
SELECT __SPAN_COLUMNS__
FROM otel_traces
WHERE Timestamp >= range_start AND Timestamp <= range_end
  AND TraceId IN (
      SELECT TraceId
      FROM otel_traces
      WHERE Timestamp >= range_start AND Timestamp <= range_end
        AND ServiceName IN {services:Array(String)}
        AND NextSpanType = 'BaseServer.handleRequest'
      GROUP BY TraceId
      HAVING countIf(SpanAttributes['next.bubble'] != 'true') = 0
  )
ORDER BY Timestamp
