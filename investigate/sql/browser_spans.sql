-- Whether the store holds spans of the reference server's browsers (virtual, or real ones on
-- its pages) in the window: the report then reads user traffic from them, else from the
-- server's own rows.
SELECT count() AS spans
FROM (
    SELECT 1 FROM otel_traces
    WHERE ServiceName = {browser_service:String} AND __WINDOW__
    LIMIT 1
)
