-- Misses on entries a new build lacked (reason deploy), in every layer, by the build the lookup
-- names and by how many deploys {bounds_ns} (Unix ns, in order) came at or before it, so that
-- each is given to its deploy: by its build, or, where it names none (a build's first requests
-- may not), the last deploy before it, else the first after it.
SELECT
    BuildId AS build,
    arrayCount(b -> b <= toUnixTimestamp64Nano(Timestamp), {bounds_ns:Array(Int64)}) AS period,
    sum(Sign) AS misses
FROM cache_events
WHERE Result IN ('miss', 'revalidated') AND Reason = 'deploy' AND Layer != '' AND __WINDOW__
GROUP BY build, period
HAVING misses != 0
ORDER BY period, build
