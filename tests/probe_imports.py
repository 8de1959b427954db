"""Imported with --import by tests/test_startup.py: appends which of startup.UNUSED the process has
imported once Keras is up to the file PROBE_IMPORTS names. A worker imports it after starting Keras, so
it writes at once; the render CLI imports it before (to find views), so there it writes at exit."""

import atexit
import json
import os
import sys

from pipeline.startup import UNUSED


def _write():
    with open(os.environ["PROBE_IMPORTS"], "a") as out:
        out.write(json.dumps({"pid": os.getpid(), "keras": "keras" in sys.modules,
                              "imported": [n for n in UNUSED if n in sys.modules]}) + "\n")


if "keras" in sys.modules:
    _write()
else:
    atexit.register(_write)
