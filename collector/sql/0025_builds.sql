-- When each build of each service first served a request, per source, so that the deploy
-- annotations of a Next.js service (its first request on each new build) read a few rows
-- instead of every request ever stored. Filled from requests by 0026; merges keep the earliest
-- time: read it with min(FirstSeen) ... GROUP BY.
CREATE TABLE IF NOT EXISTS `${database}`.`builds` ${on_cluster} (
    ServiceName LowCardinality(String),
    BuildId LowCardinality(String),
    Source LowCardinality(String),
    FirstSeen SimpleAggregateFunction(min, DateTime64(9))
) ENGINE = ${summing_engine}
ORDER BY (ServiceName, BuildId, Source)
