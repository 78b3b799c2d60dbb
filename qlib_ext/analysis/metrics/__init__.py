"""Pure analysis functions, one module per topic (alphalens's ``performance.py``): tidy
``(datetime, instrument)`` frames in, tables out.  No Qlib, no matplotlib, no file I/O
(tests/test_analysis_layout.py checks the imports)."""
