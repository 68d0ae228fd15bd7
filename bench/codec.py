"""Which codec ``otel_traces.SpanAttributes`` should have: end-to-end CPU against bytes, in the
same runs.

For each ZSTD level of ``--levels``, in turn within each run (each run in the other order): a store
is made with the collector's schema and its ``SpanAttributes`` codec set to that level, then a
fresh ``nextrace collect`` on it takes a steady ``--rate`` of the reference server's synthetic
spans for ``--seconds`` (``bench.load.offer``: its defaults, a poller on ``/sql``), so that its CPU
includes the merges that recompress the column as parts grow; then the table is merged (``OPTIMIZE
… FINAL``) and the column's compressed bytes per span are read from ``system.columns``. Reported
per level, the median of ``--runs`` runs with the lowest and highest, and each level's CPU per span
over the migration's level in the same run.

Printed, and written to ``bench/results/codec.json``.

Run: ``PYTHONPATH=. python -m bench.codec [--levels 1,3,6,9] [--rate 10000] [--runs 3]``
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from bench.ingest import progress
from bench.load import offer
from bench.measure import in_turn, summarize, write_result
from collector.config import StoreConfig
from collector.storage.store import open_store

RESULTS = Path(__file__).parent / "results"
CURRENT_LEVEL = 9  # migration 0032's


def with_level(folder: Path, level: int) -> None:
    """Make the store ``folder`` with the collector's schema and ``SpanAttributes`` at ZSTD
    ``level``."""
    store = open_store(StoreConfig.from_dsn(f"chdb://{folder}"))
    try:
        store.client.command(
            f"ALTER TABLE otel_traces MODIFY COLUMN SpanAttributes CODEC(ZSTD({level}))"
        )
    finally:
        store.close()


def attribute_bytes_per_span(folder: Path) -> float:
    """``SpanAttributes``' compressed bytes per span, the table merged into a wide part (a
    compact part, as a small table's is, has no sizes per column)."""
    store = open_store(StoreConfig.from_dsn(f"chdb://{folder}"), migrate=False)
    try:
        store.client.command("ALTER TABLE otel_traces MODIFY SETTING min_bytes_for_wide_part = 0")
        store.client.command("OPTIMIZE TABLE otel_traces FINAL")
        ((compressed, spans),) = store.client.query(
            "SELECT (SELECT sum(data_compressed_bytes) FROM system.columns WHERE database = "
            "currentDatabase() AND table = 'otel_traces' AND name = 'SpanAttributes'), "
            "(SELECT count() FROM otel_traces)"
        ).result_rows
    finally:
        store.close()
    return round(float(compressed) / float(spans), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1,3,6,9")
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "codec.json")
    args = parser.parse_args()
    levels = [int(level) for level in args.levels.split(",")]
    runs: list[dict[int, dict[str, float]]] = []
    for index in range(1, args.runs + 1):
        run: dict[int, dict[str, float]] = {}
        for level in in_turn(levels, index - 1):
            progress(f"run {index} of {args.runs}: ZSTD({level}), {args.rate:,} spans/s")
            with tempfile.TemporaryDirectory(prefix="nextrace-bench-") as tmp:
                folder = Path(tmp) / "store"
                with_level(folder, level)
                figures = offer(args.rate, args.seconds, 100, folder)
                run[level] = {
                    "cpu_us_per_span": figures["cpu_us_per_span"],
                    "attribute_bytes_per_span": attribute_bytes_per_span(folder),
                }
        runs.append(run)
    reference = CURRENT_LEVEL if CURRENT_LEVEL in levels else levels[-1]
    summary: dict[str, Any] = {}
    for level in levels:
        summary[f"ZSTD({level})"] = at_level = summarize(
            [
                {
                    **r[level],
                    f"cpu_over_zstd{reference}": round(
                        r[level]["cpu_us_per_span"] / r[reference]["cpu_us_per_span"], 3
                    ),
                }
                for r in runs
            ]
        )
        cpu, size = at_level["cpu_us_per_span"], at_level["attribute_bytes_per_span"]
        print(
            f"ZSTD({level}): {cpu['median']:g} µs of collector CPU a span "
            f"({cpu['range'][0]:g}-{cpu['range'][1]:g}), "
            f"{at_level[f'cpu_over_zstd{reference}']['median']:.3f} of ZSTD({reference})'s"
            f"; SpanAttributes {size['median']:g} B a span"
        )
    write_result(
        args.out,
        "codec",
        {
            "runs": args.runs,
            "rate": args.rate,
            "seconds": args.seconds,
            "levels": summary,
        },
    )


if __name__ == "__main__":
    main()
