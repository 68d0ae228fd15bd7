"""The contract every part of nextrace shares, and which imports nothing of nextrace: the span
attributes and their meaning (:mod:`contract.semconv`) and the root error
(:mod:`contract.errors`). Every package may import it; it imports none of them."""
