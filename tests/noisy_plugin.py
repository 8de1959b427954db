"""Imported with --import by tests/test_quiet.py: in a worker process it writes a real warning to fd 2,
as a native library would, to show such lines still reach the user."""

import multiprocessing
import os

if multiprocessing.current_process().name != "MainProcess":
    os.write(2, b"W1126 12:00:00.000000 1 my_library.cc:7] a real warning from a worker\n")
