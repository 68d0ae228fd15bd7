"""nextrace: see where the time goes in Next.js request lifecycles.

This package holds the ``nextrace`` command line (:mod:`nextrace.cli`), the one place where
the other packages (``collector``, ``instrumented_server``, ``traffic``, ``dashboards``) are
wired together, the demo and its report, and the root of every error nextrace raises
(:mod:`contract.errors`).
"""
