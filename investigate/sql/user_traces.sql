-- Traces started by virtual browsers (navigations and prefetches): user traffic, as opposed
-- to build prerenders, warm-ups and background revalidations. Included by the other queries.
SELECT TraceId FROM otel_traces WHERE ServiceName = {browser_service:String}
