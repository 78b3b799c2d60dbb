"""The Qlib ``RecordTemp`` adapters: each loads its inputs, calls a pure function of
:mod:`qlib_ext.analysis.metrics`, draws with :mod:`qlib_ext.analysis.plots`, and saves through
:mod:`qlib_ext.artifacts`.  A record imports no other record; each registers itself
(:mod:`qlib_ext.analysis.registry`), and every module of this package is a built-in recorder.
"""
