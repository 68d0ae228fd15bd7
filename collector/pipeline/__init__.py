"""From a decoded request to a stored batch: the write-ahead log, batching, translation into
columns, replay after a crash, and the Next.js normalizer's hand-off."""
