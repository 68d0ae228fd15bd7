"""nextrace: see where the time goes in Next.js request lifecycles.

This package holds only the ``nextrace`` command line, which wires the other
packages (``collector``, ``instrumented_server``, ``dashboards``) together.
"""
