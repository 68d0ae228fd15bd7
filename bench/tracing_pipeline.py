"""The reference server's tracing pipeline, in process: CPU per span made through its
``ServerTelemetry`` (its processors, its OTLP encoder, its export to a real collector).

Run as a script so that another checkout's pipeline can be timed the same way (``bench.server
--baseline-tree``): ``PYTHONPATH=<tree> python bench/tracing_pipeline.py URL SPANS``. Prints
one JSON object: CPU microseconds per span, all threads of the process, from the first span to
the end of the flush that exported the last; a bare span, and one with ten attributes.
"""

from __future__ import annotations

import json
import sys
import time

from instrumented_server.telemetry import ServerTelemetry

CHUNK = 500  # spans made between flushes, a batch the processor's queue (2048) holds
TEN = {f"nextrace.bench.attribute_{i}": f"value {i}" for i in range(10)}


def per_span_us(url: str, spans: int) -> dict[str, float]:
    telemetry = ServerTelemetry("bench", lambda: "build-1", collector_url=url)
    try:
        figures: dict[str, float] = {}
        for name, attributes in (("bare", None), ("ten_attributes", TEN)):
            for _ in range(CHUNK):  # warm up: imports, caches, the exporter's connection
                with telemetry.span("warm", "render", None, attributes):
                    pass
            telemetry.force_flush()
            started = time.process_time()
            for _ in range(spans // CHUNK):
                for _ in range(CHUNK):
                    with telemetry.span("span", "render", None, attributes):
                        pass
                telemetry.force_flush()  # within the processor's queue: no span is dropped
            made = spans // CHUNK * CHUNK
            figures[name] = round((time.process_time() - started) / made * 1e6, 1)
        return figures
    finally:
        telemetry.shutdown()


if __name__ == "__main__":
    print(json.dumps(per_span_us(sys.argv[1], int(sys.argv[2]))))
