"""Answers from stored spans: read a store (:mod:`investigate.reader`), turn its rows into spans
and trees (:mod:`investigate.spans`), and say why a navigation was slow, what its critical
path was, how it compares with its peers, and what a run measured (the report). The command
line (:mod:`nextrace.cli`) and the demo are their users; nothing here starts a process."""
