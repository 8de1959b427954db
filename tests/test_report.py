"""Where people look: the HTML report in a real browser, TensorBoard, MP4,
captions, colour composites of 16-bit channels, bigger tiles."""

import shutil

import numpy as np
import pytest
from PIL import Image

from pipeline import grid, run
from pipeline.animate import caption_text

SIZE, PAD, EPOCHS = 16, 2, 3
ALL_VIEWS = "recon,walk,manifold,samples,interp,traversal"


@pytest.fixture(scope="module")
def report_out(render, tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "o"
    result = render(tiny_run.run_dir, "--out", out, "-j", 1, "--views", ALL_VIEWS, "--mp4", "--tensorboard")
    assert result.exit_code == 0, result.output
    return out


# --- index.html in a real browser --------------------------------------------


def test_report_opens_from_a_moved_copy_every_image_loads_and_the_slider_steps(report_out, tmp_path, open_page):
    moved = tmp_path / "mailed" / "o"
    shutil.copytree(report_out, moved)  # relative links only: the folder works anywhere
    page, requests = open_page(moved / "index.html")
    page.evaluate("document.querySelectorAll('img').forEach(i => i.loading = 'eager')")  # load the lazy ones
    page.wait_for_function("[...document.images].every(i => i.complete)")
    sizes = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.getAttribute('src'), i.naturalWidth])")
    assert len(sizes) >= 8
    assert [src for src, width in sizes if width == 0] == []
    img = page.locator("#frame-walk")
    assert img.get_attribute("src") == f"walk/epoch_{EPOCHS:04d}.png"
    page.locator("#slider-walk").fill("0")  # sets the value and fires `input`
    assert img.get_attribute("src") == "walk/epoch_0001.png"
    assert page.locator("#label-walk").inner_text() == "epoch 1"
    page.wait_for_function("document.getElementById('frame-walk').naturalWidth > 0")
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 0
    assert requests and all(url.startswith("file://") for url in requests), \
        [u for u in requests if not u.startswith("file://")]


def test_report_links_are_relative_and_name_every_view(report_out):
    page = (report_out / "index.html").read_text()
    for name in ("inputs.png", "history.png", "recon.gif", "walk.gif", "manifold.gif", "samples.gif",
                 "interp.gif", "traversal.gif", "walk.mp4", "latents.csv"):
        assert f'"{name}"' in page
    assert "http:" not in page and "https:" not in page and str(report_out) not in page


# --- TensorBoard ----------------------------------------------------------------


def read_events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


def test_tensorboard_has_one_image_per_epoch_and_view_and_rerun_adds_none(render, tiny_run, report_out, tmp_path):
    acc = read_events(report_out / "tensorboard")
    for view in ("recon", "walk", "manifold", "samples", "interp"):
        assert [e.step for e in acc.Images(f"vaeviz/{view}")] == [1, 2, 3]
    assert [e.step for e in acc.Scalars("history/loss")] == [1, 2, 3]
    png = Image.open(report_out / "walk" / "epoch_0002.png")
    assert (acc.Images("vaeviz/walk")[1].width, acc.Images("vaeviz/walk")[1].height) == png.size

    out = tmp_path / "o"
    shutil.copytree(report_out, out)
    again = render(tiny_run.run_dir, "--out", out, "-j", 1, "--views", ALL_VIEWS, "--tensorboard", "--force")
    assert again.exit_code == 0
    assert [e.step for e in read_events(out / "tensorboard").Images("vaeviz/recon")] == [1, 2, 3]


# --- MP4 ------------------------------------------------------------------------


def test_mp4_has_one_frame_per_epoch_and_even_sides(report_out):
    import imageio.v3 as iio

    for view in ("recon", "walk"):
        frames = iio.imread(report_out / f"{view}.mp4", plugin="FFMPEG")
        assert frames.shape[0] == EPOCHS
        assert frames.shape[1] % 2 == 0 and frames.shape[2] % 2 == 0
        gif = Image.open(report_out / f"{view}.gif")
        assert frames.shape[1] >= gif.size[1] and frames.shape[2] >= gif.size[0]


# --- captions -------------------------------------------------------------------


def test_captions_show_epoch_loss_and_kl_from_history():
    history = {3: {"epoch": 3, "loss": 123.456, "kl": 0.5212}, 4: {"epoch": 4}}
    assert caption_text(3, history, 2) == "epoch  3  loss 123.5  kl 0.52"
    assert caption_text(4, history, 1) == "epoch 4"


def test_caption_band_never_overlaps_tiles(report_out):
    with Image.open(report_out / "recon.gif") as gif:
        for epoch in range(1, EPOCHS + 1):
            gif.seek(epoch - 1)
            frame = np.asarray(gif.convert("L"))
            tiles = np.asarray(Image.open(report_out / "recon" / f"epoch_{epoch:04d}.png"))
            np.testing.assert_array_equal(frame[frame.shape[0] - tiles.shape[0]:], tiles)
            assert frame[:frame.shape[0] - tiles.shape[0]].max() > 0  # the caption is there


# --- channels, normalisation, scale ---------------------------------------------


@pytest.fixture(scope="module")
def run16bit(tmp_path_factory):
    """Return a run whose samples are 5-channel uint16 images (a Rescaling layer feeds the model)."""
    import keras

    from pipeline.callback import CheckpointForViz

    x = np.zeros((32, SIZE, SIZE, 5), np.uint16)
    x[:, 2:6, 2:6, 0] = 65535  # only channel 0 lit here
    x[:, 10:14, 10:14, 1] = 40000
    x[:, 8:, :, 4] = 1000
    inputs = keras.Input((SIZE, SIZE, 5))
    h = keras.layers.Flatten()(keras.layers.Rescaling(1 / 65535)(inputs))
    encoder = keras.Model(inputs, [keras.layers.Dense(2)(h), keras.layers.Dense(2)(h)])
    z = keras.Input((2,))
    decoder = keras.Model(z, keras.layers.Reshape((SIZE, SIZE, 5))(
        keras.layers.Dense(SIZE * SIZE * 5, activation="sigmoid")(z)))
    ae = keras.Model(inputs, decoder(encoder(inputs)[0]))
    ae.compile(optimizer="adam", loss="mse")
    run_dir = tmp_path_factory.mktemp("tiff") / "cells"
    ae.fit(x, (x / 65535).astype("float32"), epochs=1, verbose=0,
           callbacks=[CheckpointForViz(run_dir, x, n_samples=4, encoder=encoder, decoder=decoder)])
    return run_dir


def test_composite_of_16_bit_channels_gives_the_chosen_colour(render, run16bit, tmp_path):
    assert run.read_run(run16bit)["value_range"] == [0.0, 65535.0]
    result = render(run16bit, "--out", tmp_path, "-j", 1, "--channels", "0:magenta,1:green")
    assert result.exit_code == 0, result.output
    inputs = np.asarray(Image.open(tmp_path / "inputs.png"))
    assert inputs[PAD + 3, PAD + 3].tolist() == [255, 0, 255]  # only channel 0 lit: magenta
    assert inputs[PAD + 12, PAD + 12].tolist() == [0, round(40000 / 65535 * 255), 0]
    assert inputs[PAD + 0, PAD + 0].tolist() == [0, 0, 0]


def test_16_bit_values_keep_their_range_until_uint8(render, run16bit, tmp_path):
    # channel 4 holds 1000 of 65535: global shows it as ~4/255, per-image stretches it to white
    for normalize, expected in (("global", round(1000 / 65535 * 255)), ("per-image", 255)):
        out = tmp_path / normalize
        assert render(run16bit, "--out", out, "-j", 1, "--channels", "4", "--normalize", normalize).exit_code == 0
        assert np.asarray(Image.open(out / "inputs.png"))[PAD + 12, PAD + 1] == expected


def test_scale_upsamples_tiles_by_nearest_neighbour(render, tiny_run, tmp_path):
    assert render(tiny_run.run_dir, "--out", tmp_path, "-j", 1, "--scale", 3, "--epochs", "1").exit_code == 0
    inputs = np.asarray(Image.open(tmp_path / "inputs.png"))
    assert inputs.shape == (3 * (3 * SIZE + PAD) + PAD,) * 2
    samples = run.read_samples(tiny_run.run_dir / run.SAMPLES_H5)["images"]
    expected = grid.display(samples[:1], scale=3)[0, ..., 0]
    np.testing.assert_array_equal(inputs[PAD:PAD + 3 * SIZE, PAD:PAD + 3 * SIZE], expected)


def test_bad_channel_specs_are_usage_errors(render, tiny_run, tmp_path):
    for spec in ("0:purple", "0:red,1", "x"):
        result = render(tiny_run.run_dir, "--out", tmp_path, "--channels", spec)
        assert result.exit_code == 2 and "0:magenta,1:green" in result.output


# --- a long walk, a page of rows at a time ------------------------------------------------------------


def test_page_bands_hold_32_rows_each_with_their_pads():
    from pipeline.views.walk import page_bands

    assert page_bands(70, row_height=18, pad=2) == [(0, 32 * 18 + 2, "rows 1-32"), (32 * 18, 32 * 18 + 2, "rows 33-64"),
                                                    (64 * 18, 6 * 18 + 2, "rows 65-70")]


def test_a_walk_of_one_block_pages_and_a_walk_in_blocks_is_shown_whole():
    from pipeline.settings import Picture
    from pipeline.views.walk import VIEW, WalkSettings

    s = WalkSettings(picture=Picture(pad=2, scale=1), walk_steps=10, walk_range=(0.05, 0.95), walk_anchor="prior",
                     order=tuple(range(40)), active_kl=0.01, latent_dim=40, samples=None)
    assert [label for _, _, label in VIEW.pages(s, image_height=16, frame_height=2 + 40 * 18)] == \
        ["rows 1-32", "rows 33-40"]
    assert VIEW.pages(s, image_height=16, frame_height=2 * (16 + 2 + 40 * 18)) is None  # two condition blocks
    few = WalkSettings(**{**s.__dict__, "order": tuple(range(32))})
    assert VIEW.pages(few, image_height=16, frame_height=2 + 32 * 18) is None


@pytest.fixture(scope="module")
def paged_out(render, shapes16, make_tiny_vae, tmp_path_factory):
    """Outputs of a 40-latent run: a walk of 40 rows (sorted by KL), two pages of it in the report."""
    from pipeline.callback import CheckpointForViz

    run_dir = tmp_path_factory.mktemp("paged") / "run"
    make_tiny_vae(latent_dim=40).fit(shapes16[:64], epochs=2, batch_size=64, verbose=0,
                                     callbacks=[CheckpointForViz(run_dir, shapes16[:64], n_samples=4)])
    out = run_dir.parent / "o"
    result = render(run_dir, "--out", out, "-j", 1)
    assert result.exit_code == 0, result.output
    return out


def test_the_report_shows_a_40_row_walk_in_pages_of_32_rows_and_a_button_turns_the_page(paged_out, open_page):
    page, _ = open_page(paged_out / "index.html")
    page.evaluate("document.querySelectorAll('img').forEach(i => i.loading = 'eager')")
    page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    buttons = page.locator("#pages-walk button")
    assert buttons.all_inner_texts() == ["rows 1-32", "rows 33-40"]
    frame = np.asarray(Image.open(paged_out / "walk" / "epoch_0002.png"))
    row = (frame.shape[0] - 2) // 40  # pad 2, 40 rows

    def shown_band():  # the frame's pixel rows the clip shows: [top, bottom)
        img, clip = page.eval_on_selector("#frame-walk", "i => [i.getBoundingClientRect().toJSON(), "
                                                         "i.parentElement.getBoundingClientRect().toJSON()]")
        per_pixel = img["height"] / frame.shape[0]
        return round((clip["top"] - img["top"]) / per_pixel), round((clip["bottom"] - img["top"]) / per_pixel)

    assert shown_band() == (0, 32 * row + 2)
    buttons.nth(1).click()
    assert shown_band() == (32 * row, frame.shape[0])
    assert buttons.nth(1).get_attribute("aria-pressed") == "true"
