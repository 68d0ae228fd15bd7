"""The nextrace collector: OTLP/HTTP traces in, ClickHouse rows out.

The pipeline is a chain of stages linked by one interface,
:class:`collector.consumer.TracesConsumer`::

    OTLPHttpReceiver -> decode + translate -> BatchSpanProcessor -> ClickHouseSpanExporter

:mod:`collector.service` wires the stages together.
"""
