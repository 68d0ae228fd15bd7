"""nextrace: see where the time goes in Next.js request lifecycles.

This package holds the ``nextrace`` command line (:mod:`nextrace.cli`), the one place where
the other packages (``collector``, ``instrumented_server``, ``traffic``, ``dashboards``,
``investigate``) are wired together, and the demo. The answers it prints are
:mod:`investigate`'s; the root of every error nextrace raises is :mod:`contract.errors`.
"""
