"""The virtual browsers drive the same in-process reference server as the server's own tests."""

from tests.instrumented_server.conftest import make_server, server

__all__ = ["make_server", "server"]
