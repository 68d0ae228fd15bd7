"""ClickHouse: the store and its schema (migrations, cluster), the exporters that insert batches
exactly once, the staged insert, and the read guard."""
