"""What real Next.js spans mean: the mapping of Next's span types, the reasons of data-cache
misses, and the derived rows written for them."""
