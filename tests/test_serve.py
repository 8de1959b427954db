"""The explorer, `python -m pipeline.serve`: its page in a real browser draws what the render draws, at the
epoch chosen; bad requests get a 4xx with a message and the server keeps serving; it answers loopback names
only; checkpoints written while it serves join; Ctrl-C stops it."""

import http.client
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline import grid, run
from pipeline.latents import kl_per_dim, rank_latents
from pipeline.serve import Explorer, Refused, address, host_allowed, make_server, screenshot
from pipeline.views.base import LABEL_WIDTH, normal_ppf

EPOCHS, LATENT, SAMPLES, SIZE, PAD = 3, 3, 9, 16, 2


@dataclass
class Served:
    explorer: Explorer
    server: object
    run_dir: Path
    url: str


def serving(explorer):
    """Return a server of `explorer` on a free loopback port, serving in a thread."""
    server = make_server(explorer, port=0)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def served(tiny_run, tmp_path_factory):
    """The tiny run's explorer (a copy: a test adds a checkpoint), two cached epochs for three checkpoints."""
    run_dir = tmp_path_factory.mktemp("serve") / "run"
    shutil.copytree(tiny_run.run_dir, run_dir)
    explorer = Explorer(run_dir, cache_size=2)
    server = serving(explorer)
    yield Served(explorer, server, run_dir, address(server))
    server.shutdown()
    server.server_close()


def get(served, target: str, headers=None):
    """Return (status, body, content type) of GET `target` from the explorer."""
    host, port = served.server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("GET", target, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read(), response.getheader("Content-Type")
    finally:
        conn.close()


def raw(served, request: bytes) -> int:
    """Return the status of a request sent as raw bytes (what http.client would not send)."""
    with socket.create_connection(served.server.server_address[:2], timeout=30) as s:
        s.sendall(request)
        return int(s.recv(4096).split(b" ", 2)[1])


def png(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)))


@pytest.fixture(scope="module")
def python_models(served):
    """Return `at(epoch) -> Models`: the run's models in this test, loaded with that epoch (not the server's)."""
    from pipeline.models import Models

    models = Models(run.read_run(served.run_dir))

    def at(epoch):
        models.load(served.run_dir / run.WEIGHTS_DIR / run.checkpoint_name(epoch))
        return models

    return at


@pytest.fixture(scope="module")
def python_decode(python_models):
    """Return `decode(epoch, z) -> (H, W)` uint8: the run's decoder on z at that epoch, drawn as the render draws."""
    def decode(epoch, z):
        return grid.display(python_models(epoch).decode(np.asarray([z], np.float32)))[0, ..., 0]

    return decode


@pytest.fixture(scope="module")
def walk_png(render, served, tmp_path_factory):
    """The render's walk of the last epoch, and the report around it."""
    out = tmp_path_factory.mktemp("walk")
    result = render(served.run_dir, "--out", out, "-j", 1, "--views", "walk", "--epochs", str(EPOCHS))
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def page(browser, served):
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(served.url)
    settled(page)
    yield page
    page.close()


def settled(page, selector="#decoded") -> np.ndarray:
    """Wait until the picture shows the page's latest state; return its pixels' gray (H, W) uint8."""
    page.wait_for_function("() => Number(document.getElementById('decoded').dataset.seq) === "
                           "window.explorer.state.seq", timeout=30000)
    found = page.evaluate("""sel => { const img = document.querySelector(sel), c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight; const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
        return [c.height, c.width, Array.from(ctx.getImageData(0, 0, c.width, c.height).data)]; }""", selector)
    h, w, data = found
    return np.array(data, np.uint8).reshape(h, w, 4)[..., 0]


def close(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two pictures are equal within one grey level."""
    return a.shape == b.shape and int(np.abs(a.astype(int) - b.astype(int)).max()) <= 1


def reset(page, epoch_index=EPOCHS - 1):
    page.locator("#reset").click()
    page.locator("#epoch").fill(str(epoch_index))
    settled(page)


# --- the page in a real browser --------------------------------------------------------------------------------


def test_page_has_an_epoch_slider_and_one_slider_per_latent_in_the_walks_order(page, served, python_models):
    assert page.locator("#epoch").get_attribute("max") == str(EPOCHS - 1)
    assert page.locator("#epoch-label").inner_text() == str(EPOCHS)
    samples = run.read_samples(served.run_dir / run.SAMPLES_H5)["images"]
    z_mean, z_log_var = python_models(EPOCHS).encode(samples)
    kl = kl_per_dim(z_mean, z_log_var)
    rows = page.locator(".latent")
    assert rows.count() == LATENT
    assert [int(rows.nth(r).get_attribute("data-dim")) for r in range(LATENT)] == rank_latents(kl)
    for r, d in enumerate(rank_latents(kl)):
        assert rows.nth(r).locator("label").inner_text().split() == [f"z{d}", "KL", f"{kl[d]:.2f}"]
        assert rows.nth(r).locator("input").get_attribute("min") == str(float(normal_ppf(0.05)))
    assert page.locator("#samples img").count() == SAMPLES
    assert page.locator("#condition-row").is_hidden()  # not a conditional VAE


def test_a_latent_at_either_end_shows_the_python_decode_and_the_walks_end_column(page, python_decode, walk_png):
    reset(page)
    first = int(page.locator(".latent").first.get_attribute("data-dim"))
    walk = np.asarray(Image.open(walk_png / "walk" / f"epoch_{EPOCHS:04d}.png"))
    walk = walk[..., 0] if walk.ndim == 3 else walk
    for end, column in (("max", 9), ("min", 0)):
        slider = page.locator(f"#z{first}")
        slider.fill(slider.get_attribute(end))
        shown = settled(page)
        z = np.zeros(LATENT)
        z[first] = normal_ppf(0.95 if end == "max" else 0.05)
        assert close(shown, python_decode(EPOCHS, z)), end
        top, left = PAD, LABEL_WIDTH + PAD + column * (SIZE + PAD)  # row 0 of the walk: the same latent
        assert close(shown, walk[top:top + SIZE, left:left + SIZE]), end


def test_moving_the_epoch_slider_shows_that_epochs_decode(page, python_decode):
    reset(page)
    first = int(page.locator(".latent").first.get_attribute("data-dim"))
    page.locator(f"#z{first}").fill(page.locator(f"#z{first}").get_attribute("max"))
    last = settled(page)
    z = np.zeros(LATENT)
    z[first] = normal_ppf(0.95)
    page.locator("#epoch").fill("0")
    earlier = settled(page)
    assert page.locator("#epoch-label").inner_text() == "1"
    assert close(earlier, python_decode(1, z))
    assert not close(earlier, last)  # training moved the decoder: the picture did change


def test_clicking_a_sample_sets_the_sliders_to_its_z_mean_and_shows_its_reconstruction(page, served, python_models,
                                                                                        python_decode, tmp_path):
    reset(page)
    # narrow every slider, so that the encoding lies outside them: each must extend to hold its value
    page.evaluate("document.querySelectorAll('.latent input').forEach(s => { s.min = -1e-4; s.max = 1e-4; })")
    k = 4
    page.locator("#samples img").nth(k).click()
    shown = settled(page)
    page.wait_for_function("() => !document.getElementById('recon-box').hidden")
    samples = run.read_samples(served.run_dir / run.SAMPLES_H5)["images"]
    z_mean = python_models(EPOCHS).encode(samples)[0][k]
    state = np.asarray(page.evaluate("window.explorer.state.z"), np.float32)
    np.testing.assert_array_equal(state, z_mean)
    for d in range(LATENT):  # each slider holds its value (to float32, what is decoded): extended, not clamped
        assert np.float32(page.locator(f"#z{d}").input_value()) == z_mean[d]
    assert close(shown, python_decode(EPOCHS, z_mean))
    page.wait_for_function("() => document.getElementById('recon').naturalWidth > 0")
    assert close(settled(page, "#recon"), shown)  # the reconstruction is decoder(z_mean): the same picture
    page.screenshot(path=str(tmp_path / "explorer.png"), full_page=True)
    assert Image.open(tmp_path / "explorer.png").size[0] == 1100


# --- bad requests: a 4xx with a message, and the server keeps serving ------------------------------------------

BAD = [
    ("/../run.json", 404), ("/%2e%2e/run.json", 404), ("/%2E%2E%2Frun.json", 404), ("/run.json", 404),
    ("/weights/epoch_0001.weights.h5", 404), ("/decode/../../run.json", 404), ("//etc/passwd", 404),
    ("/etc/passwd", 404), ("/decode?epoch=99&z=0,0,0", 404), ("/decode?epoch=abc&z=0,0,0", 400),
    ("/decode?epoch=-1&z=0,0,0", 400), ("/epoch?epoch=%ff", 400), ("/decode?epoch=1&z=0,0", 400),
    ("/decode?epoch=1&z=0,0,0,0", 400), ("/decode?epoch=1&z=nan,0,0", 400), ("/decode?epoch=1&z=inf,0,0", 400),
    ("/decode?epoch=1&z=-1e308,0,0", 400), ("/decode?epoch=1&z=1e400,0,0", 400), ("/decode?epoch=1&z=1001,0,0", 400),
    ("/decode?epoch=1&z=a,b,c", 400), ("/decode?epoch=1&z=,,", 400), ("/decode?epoch=1", 400),
    ("/decode?epoch=1&epoch=2&z=0,0,0", 400), ("/decode?epoch=1&z=0,0,0&x=1", 400),
    ("/decode?epoch=1&z=0,0,0&c=0", 400), ("/meta?a&&b", 400), ("/meta?x=1", 400), ("/decode?" + "z=0&" * 20, 400),
    ("/recon?epoch=1&sample=99", 404), ("/sample?index=99", 404), ("/sample?index=1.5", 400),
]


@pytest.mark.parametrize("target,status", BAD)
def test_a_bad_request_gets_a_4xx_with_a_message_and_the_server_still_answers(served, target, status):
    got, body, kind = get(served, target)
    assert (got, kind) == (status, "text/plain; charset=utf-8")
    assert len(body.decode()) > 20  # says what was expected
    assert get(served, "/decode?epoch=1&z=0,0,0")[0] == 200


@pytest.mark.parametrize("request_bytes,status", [
    (b"GET http://evil.example/etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400),  # absolute form
    (b"GET /meta HTTP/1.1\r\nHost: evil.example\r\n\r\n", 403),  # a DNS rebinding page's request
    (b"GET /meta HTTP/1.1\r\nHost: 127.0.0.1.evil.example:80\r\n\r\n", 403),
    (b"GET /meta HTTP/1.0\r\n\r\n", 403),  # no Host
    (b"POST /decode?epoch=1&z=0,0,0 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n", 405),
    (b"GET /meta and more HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400),  # the standard library's parser says it
    (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 414),
])
def test_a_bad_raw_request_gets_a_4xx_and_the_server_still_answers(served, request_bytes, status):
    assert raw(served, request_bytes) == status
    assert get(served, "/meta")[0] == 200


def test_host_header_names_loopback_unless_another_host_was_asked_for():
    for header in ("127.0.0.1:8765", "localhost:8765", "[::1]:8765", "127.0.0.2", "LOCALHOST"):
        assert host_allowed(header, "127.0.0.1"), header
    for header in ("evil.example:8765", "127.0.0.1.evil.example", "localhost.evil.example", "", None, "[bad",
                   "192.168.1.5:8765"):
        assert not host_allowed(header, "127.0.0.1"), header
    assert host_allowed("192.168.1.5:8765", "0.0.0.0") and not host_allowed("evil.example", "0.0.0.0")
    assert host_allowed("myhost.lan:8765", "myhost.lan") and not host_allowed("evil.example", "myhost.lan")


# --- many clients, new checkpoints, other runs ---------------------------------------------------------------


def test_concurrent_clients_on_different_epochs_each_get_their_epochs_decode(served, python_decode):
    rng = np.random.default_rng(0)
    asked = [[(int(rng.integers(1, EPOCHS + 1)), rng.normal(size=LATENT).round(3)) for _ in range(8)]
             for _ in range(6)]  # 6 clients, two cached epochs for three: slots are reloaded while others decode
    answers = [[] for _ in asked]

    def client(i):
        for epoch, z in asked[i]:
            status, body, _ = get(served, f"/decode?epoch={epoch}&z={','.join(map(str, z))}")
            answers[i].append(png(body) if status == 200 else status)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(asked))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for requests, got in zip(asked, answers):
        assert len(got) == len(requests)
        for (epoch, z), picture in zip(requests, got):
            assert isinstance(picture, np.ndarray) and close(picture, python_decode(epoch, z)), (epoch, z)


def test_a_checkpoint_written_while_serving_joins_the_epochs(served, page):
    weights = served.run_dir / run.WEIGHTS_DIR
    shutil.copy2(weights / run.checkpoint_name(EPOCHS), weights / ".new.tmp")
    os.replace(weights / ".new.tmp", weights / run.checkpoint_name(EPOCHS + 1))
    status, body, _ = get(served, "/meta")
    assert status == 200 and b'"epochs": [1, 2, 3, 4]' in body
    z = "0.5,-0.5,1"
    assert get(served, f"/decode?epoch=4&z={z}")[1] == get(served, f"/decode?epoch=3&z={z}")[1]  # same weights
    page.wait_for_function(f"() => document.getElementById('epoch').max === '{EPOCHS}'", timeout=15000)  # polled


def test_a_run_without_samples_serves_the_sliders_without_the_samples(tiny_run, tmp_path, browser):
    run_dir = tmp_path / "bare"
    shutil.copytree(tiny_run.run_dir, run_dir, ignore=shutil.ignore_patterns(run.SAMPLES_H5))
    explorer = Explorer(run_dir, cache_size=1)
    meta = explorer.meta()
    assert (meta["samples"], meta["order"], meta["kl_last"]) == (0, [0, 1, 2], None)
    with pytest.raises(Refused) as refused:
        explorer.sample(0)
    assert refused.value.status == 404
    server = serving(explorer)
    try:
        page = browser.new_page()
        page.goto(address(server))
        assert settled(page).shape == (SIZE, SIZE)
        assert page.locator(".latent").count() == LATENT and page.locator("#samples-box").is_hidden()
        page.close()
    finally:
        server.shutdown()
        server.server_close()


def test_a_conditional_vae_offers_its_conditions_and_decodes_with_the_one_chosen(tmp_path, shapes16):
    import zoo_models

    encoder, decoder, _, c = zoo_models.train_conditional(tmp_path / "cvae", shapes16[:64])
    explorer = Explorer(tmp_path / "cvae", cache_size=1)
    meta = explorer.meta()
    assert meta["conditions"] == ["c = 0", "c = 1", "c = 2"]
    samples = run.read_samples(tmp_path / "cvae" / run.SAMPLES_H5)["conditions"]
    assert meta["sample_conditions"] == np.argmax(samples, axis=1).tolist()
    z = np.array([0.5, -1.0], np.float32)
    for k in range(3):
        expected = decoder.predict_on_batch([z[None], np.eye(3, dtype=np.float32)[k:k + 1]])
        assert close(explorer.decode(EPOCHS, z, k)[..., 0], grid.display(expected)[0, ..., 0])
    assert not close(explorer.decode(EPOCHS, z, 0), explorer.decode(EPOCHS, z, 2))
    with pytest.raises(Refused) as refused:
        explorer.decode(EPOCHS, z, 3)
    assert refused.value.status == 400


# --- the command line ------------------------------------------------------------------------------------------


def test_the_report_says_how_to_open_the_explorer(walk_png, served):
    page = (walk_png / "index.html").read_text()
    assert f"python -m pipeline.serve {served.run_dir}" in page


def test_help_has_the_renders_options():
    from click.testing import CliRunner

    from pipeline.serve import main

    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for option in ("--port", "--host", "--walk-range", "--channels", "--import", "--unsafe", "--screenshot"):
        assert option in result.output


def test_another_host_is_served_only_with_a_warning(tmp_path):
    from click.testing import CliRunner

    from pipeline.serve import main

    result = CliRunner().invoke(main, [str(tmp_path), "--host", "0.0.0.0"])  # not a run: stops before binding
    assert result.exit_code == 2
    assert "warning: serving on 0.0.0.0" in result.output and "anyone who can reach" in result.output


def test_the_command_prints_its_address_moves_off_a_busy_port_and_stops_on_ctrl_c(served):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # as a terminal starts it: with SIGINT's default action. A library earlier in the suite leaves SIGINT ignored
        # in this process, a child inherits that (as a shell's background jobs do), and Python then installs no
        # KeyboardInterrupt: the full suite's run waited 120 s here while the file alone passed
        child = subprocess.Popen([sys.executable, "-m", "pipeline.serve", str(served.run_dir), "--port", str(port)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                                 preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            line = child.stdout.readline()  # the address, once it serves
            assert line.startswith(f"vaeviz explorer of {served.run_dir}: http://127.0.0.1:"), line
            url = line.split(": ", 1)[1].split()[0]
            moved = int(url.rsplit(":", 1)[1].strip("/"))
            assert moved != port
            conn = http.client.HTTPConnection("127.0.0.1", moved, timeout=30)
            conn.request("GET", "/meta")
            assert conn.getresponse().status == 200
            conn.close()  # with the body unread: the server sees the connection reset, and says nothing
            child.send_signal(signal.SIGINT)
            _, err = child.communicate(timeout=120)  # a bound, not a timing: a loaded CI machine is slow
        finally:
            child.kill()
    assert child.returncode == 0, err
    assert f"port {port} is in use: serving on {moved} instead" in err and "stopped (Ctrl-C)" in err
    assert "Traceback" not in err


def test_screenshot_saves_the_page_as_chromium_draws_it(served, tmp_path):
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.skip("Debian's chromium is not installed")
    screenshot(served.url + "#sample=0", tmp_path / "explorer.png")
    picture = np.asarray(Image.open(tmp_path / "explorer.png").convert("L"))
    assert picture.shape == (900, 1100)
    assert len(np.unique(picture)) > 20  # drawn: sliders, pictures, samples, not a blank page


def _finish_later(run_dir: Path, delay: float) -> threading.Thread:
    """Start a thread that marks `run_dir` finished after `delay` seconds, as CheckpointForViz does at the end."""
    def finish():
        threading.Event().wait(delay)
        run.write_run(run_dir, {**run.read_run(run_dir), "finished": True})

    thread = threading.Thread(target=finish)
    thread.start()
    return thread


def test_wait_returns_once_the_run_finishes_and_gives_up_on_a_run_that_stopped(tiny_run, tmp_path):
    from click import ClickException

    from pipeline.serve import wait_for_finish

    run_dir, training = tmp_path / "run", tmp_path / "training"
    shutil.copytree(tiny_run.run_dir, training)
    run.write_run(training, {**run.read_run(training), "finished": False})
    said = []
    later = threading.Thread(target=lambda: (threading.Event().wait(0.3), training.rename(run_dir)))
    later.start()  # the folder appears while it waits, training still going
    finishing = None
    try:
        waited = threading.Thread(target=wait_for_finish, args=(run_dir,),
                                  kwargs={"log": said.append, "poll": 0.05, "idle_timeout": 30})
        waited.start()
        later.join()
        finishing = _finish_later(run_dir, 0.5)
        waited.join(timeout=30)
        assert not waited.is_alive() and run.is_finished(run_dir)
        assert said == [f"waiting for {run_dir} to finish training"]
    finally:
        if finishing is not None:
            finishing.join()
    run.write_run(run_dir, {**run.read_run(run_dir), "finished": False})  # stopped: no checkpoint comes any more
    with pytest.raises(ClickException, match="no new checkpoint for 0.3 s .* does not say it finished"):
        wait_for_finish(run_dir, log=said.append, poll=0.05, idle_timeout=0.3)


def test_screenshot_with_wait_shows_the_run_once_it_finished(tiny_run, tmp_path):
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.skip("Debian's chromium is not installed")
    from click.testing import CliRunner

    from pipeline.serve import main

    run_dir, shot = tmp_path / "run", tmp_path / "explorer.png"
    shutil.copytree(tiny_run.run_dir, run_dir)
    run.write_run(run_dir, {**run.read_run(run_dir), "finished": False})
    finishing = _finish_later(run_dir, 3.0)  # longer than a screenshot takes here
    try:
        result = CliRunner().invoke(main, [str(run_dir), "--port", "0", "--wait", "--screenshot", str(shot)])
    finally:
        finishing.join()
    assert result.exit_code == 0, result.output
    assert f"waiting for {run_dir} to finish training" in result.output
    assert shot.is_file() and shot.stat().st_mtime_ns >= (run_dir / run.RUN_JSON).stat().st_mtime_ns


def test_a_missing_run_directory_is_refused_unless_waited_for(tmp_path):
    from click.testing import CliRunner

    from pipeline.serve import main

    result = CliRunner().invoke(main, [str(tmp_path / "nothing")])
    assert result.exit_code == 2
    assert "does not exist" in result.output and "--wait" in result.output
