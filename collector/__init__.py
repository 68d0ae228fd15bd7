"""The nextrace collector: OTLP/HTTP traces in, ClickHouse rows out.

Stages are joined by one interface, :class:`collector.consumer.TracesConsumer`, and share
one lifecycle (``Component``) and one retry helper (:mod:`collector.retry`)::

    OTLPHttpReceiver -> WriteAheadStage -> NextjsTraceNormalizer
        -> BatchSpanProcessor -> ClickHouseSpanExporter

:mod:`collector.service` wires the stages together; ``docs/internal-architecture.md``
says where to start reading.
"""
