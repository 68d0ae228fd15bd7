"""The sizing table of docs/scaling.md is the one the recorded benchmark results give."""

from __future__ import annotations

from pathlib import Path

from bench.sizing import Figures, figures, table

ROOT = Path(__file__).resolve().parents[2]


def test_the_scaling_page_shows_the_table_the_results_give():
    assert table(figures()) in (ROOT / "docs" / "scaling.md").read_text()


def test_the_table_grows_with_the_rate_and_the_costs():
    cheap = table(
        Figures(cpu_us_per_span=20, load_rate=20_000, engine_share=0.5, bytes_per_span=20)
    )
    costly = table(
        Figures(cpu_us_per_span=80, load_rate=20_000, engine_share=0.5, bytes_per_span=80)
    )

    def cells(markdown: str, column: int) -> list[float]:
        rows = markdown.splitlines()[2:]
        return [float(r.split("|")[column + 1].split()[0].replace(",", "")) for r in rows]

    for column in (1, 4):  # collectors, shards
        assert cells(cheap, column) == sorted(cells(cheap, column))  # more spans, more of both
        assert all(a <= b for a, b in zip(cells(cheap, column), cells(costly, column), strict=True))
    assert cells(costly, 1)[0] >= 2  # a spare collector, always
