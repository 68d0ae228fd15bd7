-- The active parts of the store's database that may be broken (see
-- ClickHouseStore.detach_broken_parts in collector/storage/store.py): those whose folder a failed
-- statement's error names, and those committed since a failed insert began.
SELECT table, name, rows, level
FROM system.parts
WHERE active
  AND database = {database:String}
  AND (
    (name IN {names:Array(String)} AND position({message:String}, path) > 0)
    OR modification_time >= fromUnixTimestamp({since:Int64})
  )
