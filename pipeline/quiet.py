"""Native start-up noise kept off the terminal: TensorFlow's and absl's import lines, CUDA probing on CPU.

TensorFlow writes these to file descriptor 2 from C++ while it imports, before
any log level is read, so TF_CPP_MIN_LOG_LEVEL cannot reach them. `quietly()`
points fd 2 at a temporary file for the duration, then passes on every line
that is not known start-up noise: real warnings and errors still reach the
user. With VAEVIZ_VERBOSE=1 (the CLIs' -v) nothing is captured.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

__all__ = ["quietly", "is_noise", "VERBOSE"]

VERBOSE = "VAEVIZ_VERBOSE"  # set to 1 by `-v`; workers inherit it

# absl-style lines ("I0000 00:00:1795.. 123 file.cc:45] ...") from these sources, and a few bare ones
_NOISY_SOURCES = ("cudart_stub.cc", "port.cc", "cpu_feature_guard.cc", "cuda_platform.cc", "cuda_executor.cc",
                  "cuda_dnn.cc", "cuda_fft.cc", "cuda_blas.cc", "computation_placer.cc", "cuda_driver.cc",
                  "gpu_device.cc", "tf_trt", "xla_bridge.py", "dso_loader.cc", "cuda_diagnostics.cc")
_ABSL = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ (?P<source>[\w./-]+):\d+\]")
_BARE = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
         "To enable the following instructions:", "This TensorFlow binary is optimized to use available CPU",
         "rebuild TensorFlow with the appropriate compiler flags", "TF-TRT Warning: Could not find TensorRT",
         "An NVIDIA GPU may be present on this machine, but a CUDA-enabled jaxlib is not installed")


def is_noise(line: str) -> bool:
    """Return whether a line written to stderr is known start-up noise (nothing the user can act on)."""
    m = _ABSL.match(line)
    if m and any(source in m.group("source") for source in _NOISY_SOURCES):
        return True
    return any(text in line for text in _BARE) or not line.strip()


@contextlib.contextmanager
def quietly():
    """Capture what native code writes to fd 2 inside the block; pass on all but start-up noise."""
    if os.environ.get(VERBOSE) == "1":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode(errors="replace").splitlines() if not is_noise(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)
