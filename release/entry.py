"""The one-file binary's entry point: the `kiro-gateway` command, frozen.

`freeze_support` lets `--workers N` work: uvicorn starts its workers by running this same executable
again through multiprocessing's spawn, and the child must become a worker, not a second CLI.
"""

import multiprocessing
import sys

from kiro_gateway.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
