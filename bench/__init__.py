"""kiro-gateway benchmark: fake Kiro + gateway subprocesses, an in-process async load generator.

Run `python -m bench --help` (or `python bench/run.py --help`); see bench/README.md.
"""
