-- The active parts of the store's database whose folder an error message names: the parts a
-- failed read was reading (see ClickHouseStore.detach_broken_parts in collector/store.py).
SELECT table, name, rows
FROM system.parts
WHERE active
  AND database = {database:String}
  AND name IN {names:Array(String)}
  AND position({message:String}, path) > 0
