"""Explore a run live: a local server whose page decodes the latents you drag, at any checkpoint.

    python -m pipeline.serve checkpoints/demo        # prints http://127.0.0.1:8765/ ; Ctrl-C stops it

The page (`templates/explorer.html.j2`) has an epoch slider over the run's
checkpoints, one slider per latent (in the walk's order, spanning the walk's
range), the fixed samples and, for a conditional VAE, a condition selector.
It asks for decodes as the sliders move:

    GET /                                   the page
    GET /meta                               JSON: epochs, latent order, ranges, conditions, samples
    GET /epoch?epoch=12                     JSON: each latent's KL and the samples' z_mean at that epoch
    GET /decode?epoch=12&z=0.1,-0.3,...[&c=K]   PNG: decoder(z) drawn as the render draws it
    GET /recon?epoch=12&sample=K            PNG: sample K's reconstruction (decoded from its z_mean)
    GET /sample?index=K                     PNG: sample K as fed to the model

Decodes are the render's own: the run's models rebuilt in Keras safe mode
(`pipeline.models`), the decoder read as the render decides (`render._decoder_output`),
drawn with the same value range and channel display (`views.base.shown`).
Each cached epoch has its own models (`Decoders`, least recently used first
out), so requests at different epochs never share weights being set.

The server is the standard library's `http.server.ThreadingHTTPServer`: one
user on loopback, six read-only GET routes and a few PNGs a second need no
framework, and it adds no dependency to a package that renders offline. The
request line and headers are parsed by the standard library; vaeviz only
routes and checks each query (`Refused`: a 4xx with a message). It binds
127.0.0.1 and answers only requests whose Host header names this machine by
a loopback name or address (against DNS rebinding). Nothing from the run
directory is executed, and only the routes above are served: no file path
is ever read from a request.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import ipaddress
import itertools
import json
import logging
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

if __name__ == "__main__":  # before click and Keras: say what to install where the render extra is missing
    from pipeline.startup import require_render

    require_render()

import click
import numpy as np

from pipeline import run
from pipeline.cli import exit_codes, render_options
from pipeline.render import _condition_blocks, _decoder_output, default_out_dir, open_run
from pipeline.settings import Picture, RenderSettings
from pipeline.quiet import VERBOSE, quietly
from pipeline.startup import LEAN
from pipeline.views.base import normal_ppf, shown

__all__ = ["Explorer", "Decoders", "Refused", "make_server", "host_allowed", "parse_z", "screenshot", "main"]

MAX_ABS_Z = 1000.0  # larger latent values are refused: no encoder puts a sample there
CACHE_SIZE = 4  # epochs with their own models, ready to decode
LIST_SECONDS = 1.0  # how long a listing of the run's checkpoints is trusted before it is read again
PORT_TRIES = 10  # the default port, then the next ones while they are in use
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class Refused(Exception):
    """A request the server will not answer: a 4xx status and a message saying what was expected."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


# --- the run's side: decodes, encodings, what the page needs ----------------------------------------------------


class Decoders:
    """A small cache of the run's models, one per epoch: a request decodes with the models its epoch is loaded
    in, holding them, so no other request sets their weights meanwhile.

    make() builds a fresh `Models`; on_load(models, checkpoint) runs after each load, under the same hold.
    """

    class _Slot:
        def __init__(self):
            self.lock, self.models, self.epoch, self.loaded, self.used = threading.Lock(), None, None, None, 0

    def __init__(self, make, *, size: int = CACHE_SIZE, on_load=lambda models, checkpoint: None):
        if size < 1:
            raise ValueError(f"the cache needs at least 1 slot; received size={size}.")
        self.make, self.on_load, self.closed = make, on_load, False
        self.slots = [self._Slot() for _ in range(size)]
        self._lock, self._clock = threading.Lock(), itertools.count(1)

    def _slot_for(self, epoch: int):
        """Return the slot holding `epoch`, else the least recently used one, now promised to `epoch`."""
        with self._lock:
            slot = next((s for s in self.slots if s.epoch == epoch), None)
            if slot is None:
                slot = min(self.slots, key=lambda s: s.used)
                slot.epoch = epoch
            slot.used = next(self._clock)
            return slot

    def _built(self, slot):
        if slot.models is None:
            with _BUILDING:  # Keras names layers from process-wide counters
                slot.models = self.make()
        return slot.models

    def warm(self) -> None:
        """Build every slot's models now, rather than at its first request."""
        for slot in self.slots:
            with slot.lock:
                if not self.closed:
                    self._built(slot)

    def close(self) -> None:
        """Wait for the decodes and builds under way, and let no other start: TensorFlow must be idle when the
        process ends (a thread inside it then aborts the interpreter's exit)."""
        self.closed = True
        for slot in self.slots:
            slot.lock.acquire()

    @contextlib.contextmanager
    def loaded(self, checkpoint: run.Checkpoint):
        """Yield models holding `checkpoint`'s weights, for this request alone until the block ends."""
        slot = self._slot_for(checkpoint.epoch)
        with slot.lock:
            models = self._built(slot)
            if slot.loaded != checkpoint:  # another epoch, or this epoch's file rewritten
                slot.loaded = None
                models.load(checkpoint.path)
                self.on_load(models, checkpoint)
                slot.loaded = checkpoint
            yield models


_BUILDING = threading.Lock()


class Explorer:
    """A run directory as the explorer reads it: its checkpoints, samples and models, decoded on request.

    walk_range : the walk's quantiles (`--walk-range`); each latent's slider spans their normal values.
    picture : how decodes are shown (`--channels`, `--normalize`); the run's value range is filled in.
    conditions : a conditional VAE's choices (`--conditions`, as the render takes them).
    Raises RunError for a folder that cannot be served, ValueError for settings that do not fit it.
    """

    def __init__(self, run_dir, *, walk_range=(0.05, 0.95), picture: Picture = Picture(), active_kl: float = 0.01,
                 conditions=None, safe_mode: bool = True, cache_size: int = CACHE_SIZE, log=lambda msg: None):
        self.run_dir, self.safe_mode = Path(run_dir), safe_mode
        source = open_run(self.run_dir, RenderSettings(), default_out_dir(self.run_dir), note=lambda msg: None)
        self.source, info = source, source.info
        self.latent_dim, self.walk_range, self.active_kl = int(info["latent_dim"]), tuple(walk_range), active_kl
        self.picture = replace(picture, value_range=tuple(float(v) for v in info["value_range"]))
        shown(np.zeros((1, 1, 1, run.image_shape(info)[-1])), self.picture)  # a bad --channels fails here
        self.ends = tuple(float(v) for v in normal_ppf(self.walk_range))  # the walk's first and last columns
        self.vectors, self.condition_labels = _condition_blocks(source, conditions)
        self._encodings, self._listing, self._listed_at = {}, {}, -math.inf
        self._list_lock = threading.Lock()
        self.decoders = Decoders(self._new_models, size=cache_size, on_load=self._encode)
        last = source.checkpoints[-1]
        with self.decoders.loaded(last) as models:
            inputs = self._encodings[last.epoch][1]
            likelihood = models.decoder_likelihood(inputs.images, inputs.z_mean, inputs.conditions) \
                if models.decides_output and inputs.z_mean is not None else None
        self.decoder_output = _decoder_output(info, likelihood, log)
        self.kl_last = inputs.kl
        self.order = tuple(_ranked(inputs.kl, self.latent_dim))
        if source.samples is None:
            log(f"{self.run_dir} has no {run.SAMPLES_H5}: the page has the sliders, without the row of samples")

    def _new_models(self):
        """Return the run's models, their compiled calls traced for what is served: one code, the samples."""
        from pipeline.models import Models

        models = Models(self.source.info, safe_mode=self.safe_mode)
        c = None if self.vectors is None else np.zeros((1, len(self.vectors[0])), np.float32)
        models.decode_raw(np.zeros((1, self.latent_dim), np.float32), c)
        if self.source.samples is not None:
            models.encode(self.source.samples, self.source.conditions)
        return models

    # -- checkpoints and encodings

    def checkpoints(self, *, fresh: bool = False) -> dict[int, run.Checkpoint]:
        """Return the run's checkpoints by epoch, listed again when asked or when the listing is a second old."""
        with self._list_lock:
            if fresh or time.monotonic() - self._listed_at > LIST_SECONDS:
                self._listing = {c.epoch: c for c in run.list_checkpoints(self.run_dir)}
                self._listed_at = time.monotonic()
            return self._listing

    def checkpoint(self, epoch: int) -> run.Checkpoint:
        """Return the checkpoint of `epoch`, or refuse (404) naming the epochs the run has."""
        found = self.checkpoints().get(epoch) or self.checkpoints(fresh=True).get(epoch)
        if found is None:
            have = sorted(self.checkpoints())
            raise Refused(404, f"no checkpoint for epoch {epoch}: the run has {len(have)} checkpoints, epochs "
                               f"{have[0]}..{have[-1]}." if have else f"no checkpoint for epoch {epoch}.")
        return found

    def _encode(self, models, checkpoint: run.Checkpoint) -> None:
        from pipeline.frames import encode

        samples = None if self.source.samples is None else {"images": self.source.samples,
                                                            "conditions": self.source.conditions}
        self._encodings[checkpoint.epoch] = (checkpoint, encode(models, samples))

    def encodings(self, epoch: int):
        """Return the fixed samples' Inputs at `epoch` (encoded when it was last loaded)."""
        checkpoint = self.checkpoint(epoch)
        known = self._encodings.get(epoch)
        if known is None or known[0] != checkpoint:
            with self.decoders.loaded(checkpoint):
                known = self._encodings[epoch]
        return known[1]

    # -- what the page asks for

    def meta(self) -> dict:
        """Return what the page is built from (the checkpoints listed afresh)."""
        n = 0 if self.source.samples is None else len(self.source.samples)
        return {"run": self.run_dir.name, "run_dir": str(self.run_dir), "epochs": sorted(self.checkpoints(fresh=True)),
                "latent_dim": self.latent_dim, "order": list(self.order), "range": list(self.ends),
                "walk_range": list(self.walk_range), "active_kl": self.active_kl, "kl_last": self.kl_last,
                "conditions": None if self.vectors is None else list(self.condition_labels),
                "samples": n, "sample_conditions": self._sample_conditions(),
                "image_shape": run.image_shape(self.source.info), "decoder_output": self.decoder_output}

    def _sample_conditions(self) -> list | None:
        """Return each sample's condition as an index into the choices (None where it is not one of them)."""
        if self.vectors is None or self.source.conditions is None:
            return None
        vectors = np.asarray(self.vectors, np.float32)
        c = np.asarray(self.source.conditions, np.float32).reshape(len(self.source.conditions), -1)
        return [next((k for k, v in enumerate(vectors) if np.array_equal(v, row)), None) for row in c]

    def epoch_info(self, epoch: int) -> dict:
        """Return each latent's KL (None without z_log_var or samples) and the samples' z_mean at `epoch`."""
        inputs = self.encodings(epoch)
        return {"epoch": epoch, "kl": inputs.kl,
                "z_mean": None if inputs.z_mean is None else np.asarray(inputs.z_mean, np.float64).tolist()}

    def decode(self, epoch: int, z, condition: int | None = None) -> np.ndarray:
        """Return (H, W, 1 or 3) uint8: decoder(z) at `epoch` with the chosen condition, as the render shows it."""
        z = np.asarray(z, np.float32).reshape(1, self.latent_dim)
        if self.vectors is None and condition is not None:
            raise Refused(400, "`c` is for a conditional VAE's condition; this run has none.")
        if self.vectors is not None and not 0 <= (condition or 0) < len(self.vectors):
            raise Refused(400, f"`c` must be a condition index from 0 to {len(self.vectors) - 1}; "
                               f"received {condition}.")
        c = None if self.vectors is None else np.asarray([self.vectors[condition or 0]], np.float32)
        return self._drawn(epoch, z, c)

    def _drawn(self, epoch: int, z: np.ndarray, c) -> np.ndarray:
        with self.decoders.loaded(self.checkpoint(epoch)) as models:
            images = models.decode(z, c, output=self.decoder_output)
        return shown(images, self.picture)[0]

    def _sample_index(self, k: int) -> int:
        n = 0 if self.source.samples is None else len(self.source.samples)
        if n == 0:
            raise Refused(404, "this run has no fixed samples (no samples.h5).")
        if not 0 <= k < n:
            raise Refused(404, f"no sample {k}: the run has samples 0..{n - 1}.")
        return k

    def recon(self, epoch: int, k: int) -> np.ndarray:
        """Return sample k's reconstruction at `epoch` (decoded from its z_mean with its own condition)."""
        k = self._sample_index(k)
        inputs = self.encodings(epoch)
        c = None if inputs.conditions is None else np.asarray(inputs.conditions[k:k + 1], np.float32)
        return self._drawn(epoch, inputs.z_mean[k:k + 1], c)

    def sample(self, k: int) -> np.ndarray:
        """Return fixed sample k as the render shows it."""
        return shown(self.source.images[self._sample_index(k):k + 1], self.picture)[0]


def _ranked(kl, latent_dim: int) -> list[int]:
    """Return the latents in the walk's order: by the last checkpoint's KL, else by index."""
    from pipeline.latents import rank_latents

    return rank_latents(kl) if kl is not None else list(range(latent_dim))


# --- requests -----------------------------------------------------------------------------------------------------


def parse_query(query: str, *, required=(), optional=()) -> dict[str, str]:
    """Return {name: value} of a query string holding each required name once and optional ones at most
    once, or refuse (400) saying what was expected."""
    expected = f"expected {', '.join(f'`{n}`' for n in (*required, *optional)) or 'no parameters'}"
    try:
        fields = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query), max_num_fields=8)
    except ValueError as err:
        raise Refused(400, f"malformed query `{query[:200]}` ({err}); {expected}.") from None
    unknown = sorted(set(fields) - set(required) - set(optional))
    missing = [n for n in required if n not in fields]
    repeated = sorted(n for n, v in fields.items() if len(v) > 1)
    if unknown or missing or repeated:
        said = [f"unknown {unknown}" if unknown else "", f"missing {missing}" if missing else "",
                f"repeated {repeated}" if repeated else ""]
        raise Refused(400, f"bad query ({'; '.join(s for s in said if s)}); {expected}.")
    return {name: values[0] for name, values in fields.items()}


def parse_index(value: str, name: str) -> int:
    """Return a non-negative integer parameter, or refuse (400)."""
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise Refused(400, f"`{name}` must be a whole number like `12`; received `{value[:40]}`.")
    return int(value)


def parse_z(value: str, latent_dim: int) -> np.ndarray:
    """Return z (latent_dim,) float32 from `0.1,-0.3,...`, or refuse (400): the wrong length, a value that
    is not a finite number, or one beyond +-MAX_ABS_Z."""
    parts = value.split(",")
    if len(parts) != latent_dim:
        raise Refused(400, f"`z` must hold {latent_dim} comma-separated numbers (the run's latent_dim); "
                           f"received {len(parts)}.")
    try:
        z = np.array([float(p) for p in parts], np.float64)
    except ValueError:
        raise Refused(400, f"`z` must hold numbers like `0.5,-1.2`; received `{value[:200]}`.") from None
    if not np.all(np.isfinite(z)) or np.any(np.abs(z) > MAX_ABS_Z):
        raise Refused(400, f"`z` values must be finite and within +-{MAX_ABS_Z:g}; received `{value[:200]}`.")
    return z.astype(np.float32)


def _png(grid: np.ndarray) -> tuple[bytes, str]:
    from pipeline.writers import png_bytes

    return png_bytes(grid), "image/png"


def _json(obj) -> tuple[bytes, str]:
    return json.dumps(obj, allow_nan=False).encode(), "application/json"


def _page(explorer: Explorer, q: dict):
    from pipeline.report import render_template

    return render_template("explorer.html.j2", {"name": explorer.run_dir.name, "meta": explorer.meta()}).encode(), \
        "text/html; charset=utf-8"


def _decode(explorer: Explorer, q: dict):
    condition = None if "c" not in q else parse_index(q["c"], "c")
    return _png(explorer.decode(parse_index(q["epoch"], "epoch"), parse_z(q["z"], explorer.latent_dim), condition))


# path -> (answer(explorer, query), required parameters, optional parameters)
ROUTES = {
    "/": (_page, (), ()),
    "/meta": (lambda e, q: _json(e.meta()), (), ()),
    "/epoch": (lambda e, q: _json(e.epoch_info(parse_index(q["epoch"], "epoch"))), ("epoch",), ()),
    "/decode": (_decode, ("epoch", "z"), ("c",)),
    "/recon": (lambda e, q: _png(e.recon(parse_index(q["epoch"], "epoch"), parse_index(q["sample"], "sample"))),
               ("epoch", "sample"), ()),
    "/sample": (lambda e, q: _png(e.sample(parse_index(q["index"], "index"))), ("index",), ()),
}


def host_allowed(host_header: str | None, bound_host: str) -> bool:
    """Whether a request's Host header may be answered: a loopback name or address; when serving on another
    interface (asked for with --host), also that host's name and any IP address. A DNS rebinding page
    always sends its own domain name, which none of these is."""
    if not host_header:
        return False
    try:
        name = urlsplit("//" + host_header).hostname
    except ValueError:
        return False
    if not name:
        return False
    if name in LOOPBACK_NAMES or _is_loopback_address(name):
        return True
    if is_loopback(bound_host):
        return False
    return name == bound_host.lower() or _is_address(name)


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _is_loopback_address(name: str) -> bool:
    return _is_address(name) and ipaddress.ip_address(name).is_loopback


def is_loopback(host: str) -> bool:
    """Whether binding `host` serves this machine only."""
    return host.lower() in LOOPBACK_NAMES or _is_loopback_address(host)


class _Handler(BaseHTTPRequestHandler):
    server_version, sys_version = "vaeviz-explorer", ""
    protocol_version = "HTTP/1.1"  # keep-alive: a drag's requests reuse one connection
    # headers and body leave in two writes: with Nagle's algorithm the body waited for the client's delayed ACK,
    # 40 ms on Linux loopback, most of a decode's latency
    disable_nagle_algorithm = True
    timeout = 60  # an idle connection's thread ends after this

    def do_GET(self):
        try:
            body, kind = self._answer()
        except Refused as err:
            self._send(err.status, err.message.encode(), "text/plain; charset=utf-8")
        except Exception as err:  # a bad checkpoint, a model error: said, and the server keeps serving
            self.server.log(f"error answering {self.path[:200]}: {type(err).__name__}: {err}")
            self._send(500, f"{type(err).__name__}: {err}".encode(), "text/plain; charset=utf-8")
        else:
            self._send(200, body, kind)

    def _answer(self):
        if not host_allowed(self.headers.get("Host"), self.server.host):
            raise Refused(403, f"this explorer answers requests for {self.server.host} only (Host header "
                               f"`{str(self.headers.get('Host'))[:100]}` refused, against DNS rebinding).")
        if not self.path.startswith("/"):  # an absolute URL: this is no proxy
            raise Refused(400, "expected a path starting with `/`.")
        target = urlsplit(self.path)
        if target.path not in ROUTES:
            raise Refused(404, f"no page `{target.path[:200]}`: this server serves only "
                               f"{', '.join(ROUTES)}.")
        answer, required, optional = ROUTES[target.path]
        return answer(self.server.explorer, parse_query(target.query, required=required, optional=optional))

    def _refuse_method(self):
        self._send(405, b"this explorer answers GET requests only.", "text/plain; charset=utf-8",
                   extra={"Allow": "GET"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _refuse_method

    def _send(self, status: int, body: bytes, kind: str, *, extra=None):
        self.send_response(status)
        headers = {"Content-Type": kind, "Content-Length": str(len(body)), "Cache-Control": "no-store",
                   "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                   "Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; "
                                              "script-src 'unsafe-inline'; style-src 'unsafe-inline'",
                   **(extra or {})}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        if self.server.verbose:
            super().log_message(format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # Ctrl-C does not wait for open keep-alive connections

    def __init__(self, address, explorer: Explorer, *, verbose: bool = False, log=lambda msg: None):
        self.explorer, self.host, self.verbose, self.log = explorer, address[0], verbose, log
        super().__init__(address, _Handler)


    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that went away is no error
            super().handle_error(request, client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


def make_server(explorer: Explorer, *, host: str = "127.0.0.1", port: int = 8765, verbose: bool = False,
                log=lambda msg: None):
    """Return a server of `explorer` bound to host:port, or to the next free port (up to PORT_TRIES) while
    that one is in use (port 0: any free port). Raise OSError when none is free."""
    kind = _Server6 if ":" in host else _Server
    ports = [port] if port == 0 else list(range(port, min(port + PORT_TRIES, 65536)))
    for candidate in ports:
        try:
            return kind((host, candidate), explorer, verbose=verbose, log=log)
        except OSError as err:
            if err.errno != errno.EADDRINUSE:
                raise
    raise OSError(errno.EADDRINUSE, f"port{'s' if len(ports) > 1 else ''} {ports[0]}"
                  f"{f'..{ports[-1]}' if len(ports) > 1 else ''} in use: pass --port N (0: any free port)")


def address(server) -> str:
    """Return the URL a browser opens for `server`."""
    host, port = server.server_address[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


# --- screenshots, and the command line ------------------------------------------------------------------------


def screenshot(url: str, path: Path, *, size=(1100, 900), wait_ms: int = 20000) -> None:
    """Save a PNG of the page at `url` as headless Chromium draws it once its requests have been answered."""
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise click.ClickException("--screenshot needs Chromium (`apt-get install chromium`).")
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                        "--hide-scrollbars", f"--window-size={size[0]},{size[1]}", f"--virtual-time-budget={wait_ms}",
                        f"--screenshot={path}", url], check=True, capture_output=True, timeout=120)


# How long `--wait` waits for a new checkpoint before it gives up on a run that stopped without finishing.
WAIT_IDLE_S = 600.0


def wait_for_finish(run_dir: Path, *, log, idle_timeout: float = WAIT_IDLE_S, poll: float = 0.5,
                    sleep=time.sleep) -> None:
    """Return once run.json says `run_dir` finished training (it may not exist yet); raise a ClickException
    after `idle_timeout` seconds without a new checkpoint (a run that crashed never says it finished)."""
    log(f"waiting for {run_dir} to finish training")
    seen, last_new = None, time.monotonic()
    while not run.is_finished(run_dir):
        stamps = [c.stamp() for c in run.list_checkpoints(run_dir)]
        if stamps != seen:
            seen, last_new = stamps, time.monotonic()
        elif time.monotonic() - last_new > idle_timeout:
            raise click.ClickException(
                f"{run_dir} has had no new checkpoint for {idle_timeout:g} s and its run.json does not say it "
                f"finished: did its training stop? Serve it without --wait to see what it has.")
        sleep(poll)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port to serve on; the next free one while it is in use; 0: any free port.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind. Anything but loopback lets anyone who can reach this machine read the "
                   "run's pictures (a warning says so).")
@functools.partial(render_options, only=("walk_range", "channels", "normalize", "active_kl", "condition_choice",
                                         "unsafe", "imports"))
@click.option("--screenshot", "screenshot_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Save a screenshot of the page (headless Chromium) with sample 0 chosen, then stop.")
@click.option("--wait", is_flag=True,
              help="Start while the run trains (or before its folder exists): load TensorFlow now, then serve, or "
                   f"take the --screenshot, once run.json says it finished. Gives up after {WAIT_IDLE_S:g} s "
                   "without a new checkpoint.")
@click.option("--verbose", "-v", is_flag=True, help="Log every request; show tracebacks.")
def main(run_dir, *, port, host, walk_range, channels, normalize, active_kl, condition_choice, unsafe, imports,
         screenshot_path, wait, verbose):
    """Serve RUN_DIR's explorer: drag each latent and the epoch, and see the decoder draw it live.

    \b
    Examples:
      python -m pipeline.serve checkpoints/demo                   # open the address it prints
      python -m pipeline.serve checkpoints/demo --port 0          # any free port
      python -m pipeline.serve checkpoints/cells --channels 0:magenta,1:green
      python -m pipeline.serve checkpoints/demo --wait --screenshot explorer.png   # of the last epoch
    """
    if not wait and not run_dir.is_dir():
        raise click.BadParameter(f"Directory '{run_dir}' does not exist (--wait waits for a run still to come).",
                                 param_hint="'RUN_DIR'")
    from pipeline.startup import import_keras

    os.environ[LEAN] = "1"  # Keras without what no decode uses (startup.py)
    if verbose:
        os.environ[VERBOSE] = "1"  # TensorFlow's start-up lines too
    else:  # each cached epoch's models trace their own calls: TensorFlow's warning about retracing is no news
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    say = lambda msg: click.echo(msg, err=True)  # noqa: E731
    if not is_loopback(host):
        say(f"warning: serving on {host}, not loopback: anyone who can reach this machine's port can read the "
            f"run's pictures (its decodes and samples).")
    with exit_codes(verbose):
        import_keras()
        if wait:  # TensorFlow is loaded while the run trains: serving starts as soon as it finishes
            wait_for_finish(run_dir, log=say)
        picture = Picture(channels=channels, normalize=normalize)
        with quietly():  # TensorFlow's device probing at the first op stays off the terminal
            explorer = Explorer(run_dir, walk_range=walk_range, picture=picture, active_kl=active_kl,
                                conditions=condition_choice, safe_mode=not unsafe, log=say)
        try:
            server = make_server(explorer, host=host, port=port, verbose=verbose, log=say)
        except OSError as err:
            raise click.ClickException(f"cannot serve on {host}:{port}: {err.strerror or err}") from err
    if port and server.server_address[1] != port:
        say(f"port {port} is in use: serving on {server.server_address[1]} instead")
    threading.Thread(target=explorer.decoders.warm, daemon=True).start()
    if screenshot_path is not None:
        _shoot(server, screenshot_path, say)
        return
    click.echo(f"vaeviz explorer of {run_dir}: {address(server)}  (Ctrl-C stops it)")
    try:
        server.serve_forever(poll_interval=0.25)
    except KeyboardInterrupt:
        say("stopped (Ctrl-C)")
    finally:
        server.server_close()
        explorer.decoders.close()


def _shoot(server, path: Path, say) -> None:
    """Serve in a thread while Chromium takes a screenshot of the page with sample 0 chosen; then stop."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        screenshot(address(server) + "#sample=0", path)
    finally:
        server.shutdown()
        server.server_close()
        server.explorer.decoders.close()
    say(f"screenshot of the explorer: {path}")


if __name__ == "__main__":
    from pipeline.startup import run_command

    run_command(main)
