"""The reference server that models the Next.js request lifecycle (not built yet)."""
