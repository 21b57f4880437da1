"""`python -m kiro_gateway.fake --port N`: run the fake Kiro server in the foreground."""

import sys

from .server import main

sys.exit(main())
