-- The report's window, --since {since_ns} to --until {until_ns} (Unix ns; the report passes
-- 0 and a time far ahead for an open end): included by the queries that read one.
Timestamp >= fromUnixTimestamp64Nano({since_ns:Int64})
AND Timestamp < fromUnixTimestamp64Nano({until_ns:Int64})
