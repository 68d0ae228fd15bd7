"""How many collectors, ClickHouse cores, shards and bytes a span rate needs, from the
benchmarks' recorded figures (``bench/results/``), for docs/scaling.md.

The model, and what each number comes from:

- **CPU per span at a steady load**: ``load.json``, the collector at the highest rate
  measured (its 1 s batch timer makes batches smaller than ``bench.ingest``'s, so a span costs
  more than there); it counts the embedded engine too.
- **The engine's share of it**: ``ingest_stages.json`` (ClickHouse parsing, flattening, writing
  and its views, against the whole path). The rest is the collector's own work, which a
  ClickHouse server does not do, and the engine's part is what the server does instead.
- **Bytes per span**: ``storage-10M.json``, the whole store after merges.
- **Assumptions**, stated in the table's notes: a collector is one Python process, planned at
  :data:`COLLECTOR_CORES` of a core with one spare; a ClickHouse node gives
  :data:`INSERT_CORES_PER_NODE` cores to inserts (the rest to queries and merges) and holds
  :data:`DISK_PER_NODE_TB` of data; spans are kept :data:`TTL_DAYS` days on 2 replicas.

Run: ``PYTHONPATH=. python -m bench.sizing`` prints the table that docs/scaling.md shows (a test
keeps the two equal).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
RATES = (10_000, 100_000, 1_000_000)
COLLECTOR_CORES = 0.7
INSERT_CORES_PER_NODE = 8
DISK_PER_NODE_TB = 10
TTL_DAYS = 30
REPLICAS = 2


@dataclass(frozen=True)
class Figures:
    """The measured figures the table is made of."""

    cpu_us_per_span: float  # collector and engine, at a steady load
    load_rate: int  # spans/s at which it was measured
    engine_share: float
    bytes_per_span: float

    @property
    def collector_us(self) -> float:
        return self.cpu_us_per_span * (1 - self.engine_share)

    @property
    def insert_us(self) -> float:
        return self.cpu_us_per_span * self.engine_share


def figures(results: Path = RESULTS) -> Figures:
    load = json.loads((results / "load.json").read_text())
    rate = max(load["rates"], key=int)
    stages = json.loads((results / "ingest_stages.json").read_text())
    storage = json.loads((results / "storage-10M.json").read_text())
    return Figures(
        cpu_us_per_span=load["rates"][rate]["cpu_us_per_span"]["median"],
        load_rate=int(rate),
        engine_share=stages["engine_share"],
        bytes_per_span=storage["store_bytes_per_span"],
    )


def table(measured: Figures) -> str:
    """The sizing table, in Markdown."""
    rows = [
        "| spans/s | collectors | ClickHouse cores for inserts | stored per day | "
        f"shards ({TTL_DAYS} days) | nodes ({REPLICAS} replicas) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for rate in RATES:
        collectors = math.ceil(rate * measured.collector_us / 1e6 / COLLECTOR_CORES) + 1
        insert_cores = rate * measured.insert_us / 1e6
        per_day_tb = rate * 86_400 * measured.bytes_per_span / 1e12
        shards = max(
            math.ceil(insert_cores / INSERT_CORES_PER_NODE),
            math.ceil(per_day_tb * TTL_DAYS / DISK_PER_NODE_TB),
        )
        stored = f"{per_day_tb * 1000:,.0f} GB" if per_day_tb < 1 else f"{per_day_tb:,.1f} TB"
        rows.append(
            f"| {rate:,} | {collectors} | {insert_cores:,.1f} | {stored} | {shards} | "
            f"{shards * REPLICAS} |"
        )
    return "\n".join(rows)


def main() -> None:
    measured = figures()
    print(
        f"from the results: {measured.cpu_us_per_span} µs a span at {measured.load_rate:,} "
        f"spans/s, {measured.engine_share:.0%} of it the engine's; "
        f"{measured.bytes_per_span} B a span stored"
    )
    print(table(measured))


if __name__ == "__main__":
    main()
