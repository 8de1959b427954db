"""Properties of the pure array code (grid.py, the code-making half of frames.py):
any input in the documented domain -- NaN, +-Inf, constant images, 1 to 16
channels, uint8/uint16/float32/float64 -- gives the documented shape and
dtype, never an exception. Hypothesis runs derandomized: same examples every run."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pipeline import grid
from pipeline.latents import kl_per_dim, rank_latents
from pipeline.views.base import normal_ppf
from pipeline.views.interp import interp_codes
from pipeline.views.manifold import manifold_codes
from pipeline.views.traversal import traversal_codes
from pipeline.views.walk import walk_codes

PROPERTY = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SPECIALS = [np.nan, np.inf, -np.inf, 0.0, 1.0, -1.0]
FLOAT_DTYPES = (np.float32, np.float64)
DTYPES = FLOAT_DTYPES + (np.uint8, np.uint16)


def _elements(dtype):
    """Pixel values of `dtype`: for floats mostly near the usual ranges, plus NaN, +-Inf and huge."""
    if np.issubdtype(dtype, np.floating):
        width = 32 if dtype == np.float32 else 64
        return st.one_of(st.floats(-2, 2, width=width), st.sampled_from(SPECIALS),
                         st.floats(width=width, allow_nan=True, allow_infinity=True))
    return st.integers(0, int(np.iinfo(dtype).max))


@st.composite
def images(draw, *, channels=st.sampled_from([1, 2, 3, 4, 16]), max_n=10, max_side=6):
    """An (N, H, W, C) batch of any supported dtype: random pixels, or one constant value."""
    dtype = draw(st.sampled_from(DTYPES))
    shape = (draw(st.integers(1, max_n)), draw(st.integers(1, max_side)), draw(st.integers(1, max_side)),
             draw(channels))
    if draw(st.booleans()):  # constant images: the degenerate case of every scaling
        x = np.full(shape, draw(_elements(dtype)), dtype)
    else:
        x = draw(hnp.arrays(dtype, shape, elements=_elements(dtype)))
    if np.issubdtype(dtype, np.floating) and draw(st.booleans()):  # a few NaN/Inf pixels, often
        flat = x.reshape(-1)
        for _ in range(draw(st.integers(1, 4))):
            flat[draw(st.integers(0, flat.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return x


@st.composite
def value_ranges(draw, dtype):
    """A (lo, hi) with lo < hi, finite: the classic ones for the dtype, or any reasonable one."""
    classic = [(0.0, 1.0), (-1.0, 1.0)]
    if np.issubdtype(dtype, np.integer):
        classic += [(0.0, float(np.iinfo(dtype).max)), (0.0, 4095.0)]
    if draw(st.booleans()):
        return draw(st.sampled_from(classic))
    lo = draw(st.floats(-1e4, 1e4))
    return lo, lo + draw(st.floats(1e-3, 1e5))


def channel_choices(c):
    """`channels` for pick_channels: None (the default) or 1 to 3 indices below c."""
    return st.none() | st.lists(st.integers(0, c - 1), min_size=1, max_size=3)


def reference_u8(x, lo, hi):
    """An independent statement of to_uint8's documented mapping (round half up, not to even)."""
    x = np.asarray(x, np.float64)
    with np.errstate(invalid="ignore"):
        y = np.where(np.isnan(x), lo, np.clip(x, lo, hi))
    return np.floor((y - lo) / (hi - lo) * 255 + 0.5)


def cells(n, h, w, cols, pad):
    """Yield (index, row slice, column slice) of each tile of a grid, row-major."""
    for i in range(n):
        r, k = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + k * (w + pad)
        yield i, slice(top, top + h), slice(left, left + w)


def grid_shape(n, h, w, c, cols, pad):
    """The documented grid size: rows * (H + pad) + pad by cols * (W + pad) + pad."""
    rows = math.ceil(n / cols)
    return rows * (h + pad) + pad, cols * (w + pad) + pad, c


# --- grid.py -----------------------------------------------------------------


@PROPERTY
@given(data=st.data())
def test_frame_pipeline_gives_a_uint8_grid_of_the_documented_size_with_every_tile_in_place(data):
    x = data.draw(images(), label="images")
    n, h, w, c = x.shape
    channels = data.draw(channel_choices(c), label="channels")
    value_range = data.draw(value_ranges(x.dtype), label="value_range")
    cols, pad = data.draw(st.integers(1, 12), label="cols"), data.draw(st.integers(0, 4), label="pad")

    picked = grid.pick_channels(x, channels)
    u8 = grid.to_uint8(picked, value_range=value_range)
    pad_value = data.draw(st.integers(0, 255) | st.just(grid.contrasting_pad(u8)), label="pad_value")
    out = grid.tile(u8, cols=cols, pad=pad, pad_value=pad_value)

    shown = 1 if (channels is None and c == 1) or (channels is not None and len(channels) == 1) else 3
    assert out.dtype == np.uint8
    assert out.shape == grid_shape(n, h, w, shown, cols, pad)
    background = np.ones(out.shape[:2], bool)
    for i, rows, columns in cells(n, h, w, cols, pad):
        np.testing.assert_array_equal(out[rows, columns], u8[i])
        background[rows, columns] = False
    assert (out[background] == pad_value).all()
    # the pixels mean what the docs say: each shown channel is its source channel, scaled
    assert np.abs(u8.astype(int) - reference_u8(picked, *value_range)).max() <= 1


@PROPERTY
@given(data=st.data())
def test_to_uint8_keeps_the_shape_and_maps_specials_and_the_range_ends(data):
    x = data.draw(images(), label="images")
    lo, hi = data.draw(value_ranges(x.dtype), label="value_range")
    out = grid.to_uint8(x, value_range=(lo, hi))
    assert out.dtype == np.uint8 and out.shape == x.shape
    xf = x.astype(np.float64)
    assert (out[np.isnan(xf)] == 0).all()            # documented: NaN becomes 0
    assert (out[xf == np.inf] == 255).all()
    assert (out[xf == -np.inf] == 0).all()
    assert (out[xf <= lo] == 0).all()
    assert (out[xf >= hi] == 255).all()
    if np.all(xf == xf.flat[0]):  # a constant image stays constant
        assert (out == out.flat[0]).all()


def shown_nonfinite(x, channels):
    """Return (N, H, W) bool: pixels with NaN or Inf in a channel that display shows."""
    if channels and isinstance(channels[0], tuple):
        raw = x[..., [k for k, _ in channels]]
    else:
        raw = grid.pick_channels(x, channels)
    raw = raw.astype(np.float64)
    return ~np.isfinite(raw).all(axis=-1)


HAS_DISPLAY = pytest.mark.skipif(not hasattr(grid, "display"), reason="grid.display not in this version")


@HAS_DISPLAY
@PROPERTY
@given(data=st.data(), scale=st.integers(1, 3))
def test_display_is_the_documented_pipeline_at_scale_1_and_upsamples_otherwise(data, scale):
    x = data.draw(images(), label="images")
    channels = data.draw(channel_choices(x.shape[-1]), label="channels")
    value_range = data.draw(value_ranges(x.dtype), label="value_range")
    out = grid.display(x, channels=channels, value_range=value_range, scale=scale)
    expected = grid.to_uint8(grid.pick_channels(x, channels), value_range=value_range)
    if len(channels or range(x.shape[-1])) == 2:
        expected[..., 2] = 0  # two channels show as red and green on black, whatever the range
    bad = shown_nonfinite(x, channels)
    n, h, w, c = expected.shape
    assert out.dtype == np.uint8
    assert out.shape == (n, h * scale, w * scale, 3 if bad.any() else c)
    assert (out == out[:, ::scale, ::scale].repeat(scale, axis=1).repeat(scale, axis=2)).all()
    small = out[:, ::scale, ::scale].astype(int)
    # finite pixels: the pick_channels -> to_uint8 pipeline (a gray one repeated in R, G and B)
    assert np.abs(small[~bad] - expected[~bad]).max(initial=0) <= 1
    # NaN/Inf pixels: painted in the marked colour, so a diverged model is seen, not hidden
    assert (small[bad] == np.array(grid.NONFINITE_RGB)).all()


@HAS_DISPLAY
@PROPERTY
@given(data=st.data(), normalize=st.sampled_from(["global", "per-image", "none"]))
def test_display_of_any_images_any_normalization_and_composite_is_uint8_rgb_or_gray(data, normalize):
    x = data.draw(images(), label="images")
    c = x.shape[-1]
    colours = st.sampled_from(["red", "green", "blue", "cyan", "magenta", "yellow", "gray"])
    channels = data.draw(channel_choices(c) | st.lists(st.tuples(st.integers(0, c - 1), colours),
                                                        min_size=1, max_size=4), label="channels")
    with np.errstate(all="ignore"):
        out = grid.display(x, channels=channels, value_range=data.draw(value_ranges(x.dtype)), normalize=normalize)
    composite = bool(channels) and isinstance(channels[0], tuple)
    bad = shown_nonfinite(x, channels)
    gray = grid.pick_channels(x[:1, :1, :1], None if composite else channels).shape[-1]
    assert out.dtype == np.uint8 and out.shape[:3] == x.shape[:3]
    assert out.shape[-1] == (3 if composite or bad.any() else gray)
    assert (out[bad] == np.array(grid.NONFINITE_RGB)).all()


@HAS_DISPLAY
@PROPERTY
@given(data=st.data())
@example(data=None)
def test_display_of_two_channels_has_a_black_blue_channel_in_any_value_range(data):
    if data is None:  # the classic [-1, 1] data, both channels black
        x, value_range = np.full((1, 2, 2, 2), -1.0, np.float32), (-1.0, 1.0)
    else:
        x = data.draw(images(channels=st.just(2)), label="images")
        value_range = data.draw(value_ranges(x.dtype), label="value_range")
    out = grid.display(x, value_range=value_range)
    finite = ~shown_nonfinite(x, None)
    assert out.shape[-1] == 3 and not out[finite][:, 2].any()


@PROPERTY
@given(x=hnp.arrays(st.sampled_from(DTYPES), st.integers(1, 60), elements=st.integers(0, 255)),
       value_range=st.sampled_from([(0.0, 1.0), (0.0, 255.0), (-1.0, 1.0), (0.0, 65535.0)]))
def test_to_uint8_is_monotonic(x, value_range):
    order = np.argsort(x, kind="stable")
    assert (np.diff(grid.to_uint8(x[order], value_range=value_range).astype(int)) >= 0).all()


@PROPERTY
@given(v=st.integers(0, 65535), shape=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4),
                                               st.sampled_from([1, 3, 16])))
def test_sixteen_bit_values_scale_by_257(v, shape):
    out = grid.to_uint8(np.full(shape, v, np.uint16), value_range=(0, 65535))
    assert (out == round(v / 257)).all()


@PROPERTY
@given(value_range=st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)).filter(lambda r: not r[1] > r[0]))
def test_to_uint8_rejects_an_empty_value_range(value_range):
    with pytest.raises(ValueError, match="value_range"):
        grid.to_uint8(np.zeros((1, 1, 1, 1)), value_range=value_range)


@PROPERTY
@given(data=st.data())
def test_pick_channels_shows_one_or_three_of_the_source_channels(data):
    x = data.draw(images(channels=st.integers(1, 16)), label="images")
    c = x.shape[-1]
    channels = data.draw(channel_choices(c), label="channels")
    out = grid.pick_channels(x, channels)
    chosen = ([0] if c == 1 else list(range(min(c, 3)))) if channels is None else channels
    assert out.dtype == x.dtype and out.shape[:3] == x.shape[:3]
    assert out.shape[-1] == (1 if len(chosen) == 1 else 3)
    for k, source in enumerate(chosen):
        np.testing.assert_array_equal(out[..., k], x[..., source])  # NaN equal to NaN here


@PROPERTY
@given(c=st.integers(1, 16), channels=st.lists(st.integers(-20, 20), max_size=5))
def test_pick_channels_rejects_what_it_cannot_show_with_a_value_error(c, channels):
    if 1 <= len(channels) <= 3 and all(0 <= k < c for k in channels):
        assert grid.pick_channels(np.zeros((1, 2, 2, c)), channels).shape[-1] in (1, 3)
    else:
        with pytest.raises(ValueError, match="channels"):
            grid.pick_channels(np.zeros((1, 2, 2, c)), channels)


@PROPERTY
@given(data=st.data())
def test_tile_of_any_uint8_batch_has_the_documented_size(data):
    shape = data.draw(st.tuples(st.integers(0, 30), st.integers(1, 9), st.integers(1, 9), st.sampled_from([1, 3])))
    u8 = data.draw(hnp.arrays(np.uint8, shape), label="u8")
    cols, pad = data.draw(st.integers(1, 40), label="cols"), data.draw(st.integers(0, 5), label="pad")
    pad_value = data.draw(st.integers(0, 255), label="pad_value")
    out = grid.tile(u8, cols=cols, pad=pad, pad_value=pad_value)
    n, h, w, c = shape
    rows = max(1, math.ceil(n / cols))  # an empty batch is one row of padding
    assert out.dtype == np.uint8 and out.shape == (rows * (h + pad) + pad, cols * (w + pad) + pad, c)
    for i, r, k in cells(n, h, w, cols, pad):
        np.testing.assert_array_equal(out[r, k], u8[i])


@PROPERTY
@given(u8=hnp.arrays(np.uint8, st.tuples(st.integers(1, 5), st.integers(1, 6), st.integers(1, 6),
                                          st.sampled_from([1, 3]))))
def test_contrasting_pad_is_black_or_white_and_contrasts_with_a_constant_border(u8):
    assert grid.contrasting_pad(u8) in (0, 255)
    v = int(u8.flat[0])
    assert grid.contrasting_pad(np.full_like(u8, v)) == (255 if v < 128 else 0)


GRIDS = hnp.arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 60), st.sampled_from([1, 3])))
TEXT = st.text(max_size=30)  # any unicode, control characters and newlines included


@PROPERTY
@given(g=GRIDS, text=TEXT, height=st.integers(1, 30), background=st.integers(0, 255))
def test_caption_adds_a_band_above_and_never_touches_the_grid(g, text, height, background):
    out = grid.caption(g, text, height=height, background=background)
    assert out.dtype == np.uint8 and out.shape == (g.shape[0] + height, *g.shape[1:])
    np.testing.assert_array_equal(out[height:], g)


@PROPERTY
@given(g=GRIDS, data=st.data(), width=st.integers(0, 80))
def test_label_rows_adds_a_band_left_and_never_touches_the_grid(g, data, width):
    n = data.draw(st.integers(0, 6), label="rows")
    labels = data.draw(st.lists(TEXT, min_size=n, max_size=n), label="labels")
    grays = data.draw(st.none() | st.lists(st.integers(0, 255), min_size=n, max_size=n), label="grays")
    size, pad = data.draw(st.integers(1, 20), label="tile"), data.draw(st.integers(0, 4), label="pad")
    out = grid.label_rows(g, labels, grid.tile_centers(n, size, pad), width=width, grays=grays)
    assert out.dtype == np.uint8 and out.shape == (g.shape[0], g.shape[1] + width, g.shape[2])
    np.testing.assert_array_equal(out[:, width:], g)


@PROPERTY
@given(g=GRIDS, data=st.data(), height=st.integers(1, 30), title=TEXT)
def test_label_columns_adds_a_band_below_and_never_touches_the_grid(g, data, height, title):
    n = data.draw(st.integers(0, 6), label="columns")
    labels = data.draw(st.lists(TEXT, min_size=n, max_size=n), label="labels")
    centers = grid.tile_centers(n, data.draw(st.integers(1, 20)), data.draw(st.integers(0, 4)))
    out = grid.label_columns(g, labels, centers, height=height, title=title)
    assert out.dtype == np.uint8 and out.shape == (g.shape[0] + height, *g.shape[1:])
    np.testing.assert_array_equal(out[:g.shape[0]], g)


# --- frames.py: codes ------------------------------------------------------------

PROBS = st.floats(0, 1, exclude_min=True, exclude_max=True)


# (lo, hi) with 0 < lo < hi < 1, extremes (5e-324, 1 - 1e-16) included
walk_ranges = st.tuples(PROBS, PROBS).map(sorted).map(tuple).filter(lambda r: r[0] < r[1])


@PROPERTY
@given(d=st.integers(1, 16), steps=st.integers(1, 12), walk=walk_ranges, data=st.data())
def test_walk_codes_walk_each_ordered_dimension_and_hold_the_others(d, steps, walk, data):
    lo, hi = walk
    order = data.draw(st.none() | st.lists(st.integers(0, d - 1), min_size=1, max_size=d), label="order")
    posterior = data.draw(st.booleans(), label="posterior")
    anchor = scale = None
    if posterior:
        anchor = np.asarray(data.draw(st.lists(st.floats(-5, 5), min_size=d, max_size=d), label="anchor"))
        scale = np.asarray(data.draw(st.lists(st.floats(1e-3, 5), min_size=d, max_size=d), label="scale"))
    codes = walk_codes(d, steps=steps, lo=lo, hi=hi, order=order, anchor=anchor, scale=scale)
    rows = list(range(d)) if order is None else order
    assert codes.dtype == np.float32 and codes.shape == (len(rows) * steps, d)
    assert np.isfinite(codes).all()
    values = normal_ppf(np.linspace(lo, hi, steps))
    held = np.zeros(d) if anchor is None else anchor
    for r, dim in enumerate(rows):
        block = codes[r * steps:(r + 1) * steps]
        walked = values if scale is None else held[dim] + scale[dim] * values
        np.testing.assert_allclose(block[:, dim], walked, rtol=1e-6, atol=1e-6)
        assert (np.diff(block[:, dim]) >= 0).all()  # low quantile to high, left to right
        np.testing.assert_array_equal(np.delete(block, dim, axis=1),
                                      np.broadcast_to(np.delete(held, dim).astype(np.float32), (steps, d - 1)))


@PROPERTY
@given(d=st.integers(-2, 4), steps=st.integers(-2, 4), lo=st.floats(-1, 2), hi=st.floats(-1, 2))
def test_walk_codes_reject_what_is_outside_their_domain_with_a_value_error(d, steps, lo, hi):
    if d >= 1 and steps >= 1 and 0 < lo < hi < 1:
        assert walk_codes(d, steps=steps, lo=lo, hi=hi).shape == (d * steps, d)
    else:
        with pytest.raises(ValueError):
            walk_codes(d, steps=steps, lo=lo, hi=hi)


@PROPERTY
@given(d=st.integers(2, 16), steps=st.integers(1, 10), walk=walk_ranges, data=st.data())
def test_manifold_codes_are_a_plot_of_two_dimensions_and_zero_elsewhere(d, steps, walk, data):
    i, j = data.draw(st.lists(st.integers(0, d - 1), min_size=2, max_size=2, unique=True), label="dims")
    codes = manifold_codes(d, (i, j), steps=steps, lo=walk[0], hi=walk[1])
    assert codes.dtype == np.float32 and codes.shape == (steps * steps, d)
    assert np.isfinite(codes).all()
    square = codes.reshape(steps, steps, d)
    values = np.float32(normal_ppf(np.linspace(*walk, steps)))
    np.testing.assert_array_equal(square[:, :, i], np.broadcast_to(values[None, :], (steps, steps)))
    np.testing.assert_array_equal(square[:, :, j], np.broadcast_to(values[::-1, None], (steps, steps)))
    assert not np.delete(square, [i, j], axis=2).any()


@PROPERTY
@given(pairs=st.integers(0, 5), d=st.integers(1, 8), steps=st.integers(1, 10), data=st.data())
def test_interp_codes_run_from_a_to_b_inside_their_box(pairs, d, steps, data):
    z = st.floats(-100, 100, width=32)
    z_a = data.draw(hnp.arrays(np.float32, (pairs, d), elements=z), label="z_a")
    z_b = data.draw(hnp.arrays(np.float32, (pairs, d), elements=z), label="z_b")
    codes = interp_codes(z_a, z_b, steps=steps)
    assert codes.dtype == np.float32 and codes.shape == (pairs * steps, d)
    rows = codes.reshape(pairs, steps, d)
    np.testing.assert_array_equal(rows[:, 0], z_a)
    if steps > 1:
        np.testing.assert_array_equal(rows[:, -1], z_b)
    low, high = np.minimum(z_a, z_b)[:, None], np.maximum(z_a, z_b)[:, None]
    assert ((rows >= low - 1e-4) & (rows <= high + 1e-4)).all()


@PROPERTY
@given(d=st.integers(1, 8), a=st.integers(0, 4), steps=st.integers(1, 10), walk=walk_ranges, data=st.data())
def test_traversal_codes_sweep_each_row_out_and_back_and_loop_without_a_jump(d, a, steps, walk, data):
    anchors = data.draw(hnp.arrays(np.float64, (a, d), elements=st.floats(-5, 5)), label="anchors")
    dims = data.draw(st.lists(st.integers(0, d - 1), min_size=1, max_size=d, unique=True), label="dims")
    codes = traversal_codes(anchors, dims, steps=steps, lo=walk[0], hi=walk[1])
    n_frames = steps if steps <= 2 else 2 * steps - 2
    assert codes.dtype == np.float32 and codes.shape == (n_frames, len(dims) * a, d)
    assert np.isfinite(codes).all()
    values = np.float32(normal_ppf(np.linspace(*walk, steps)))
    blocks = codes.reshape(n_frames, len(dims), a, d)
    for r, dim in enumerate(dims):
        sweep = blocks[:, r, :, dim]  # (frames, anchors)
        np.testing.assert_array_equal(sweep[:steps], np.broadcast_to(values[:, None], (steps, a)))
        np.testing.assert_array_equal(np.delete(blocks[:, r], dim, axis=-1),
                                      np.broadcast_to(np.delete(anchors, dim, axis=-1).astype(np.float32),
                                                      (n_frames, a, d - 1)))
    if steps > 2:  # ping-pong: frame t equals frame -t, so the GIF loops without a jump
        for t in range(1, n_frames):
            np.testing.assert_array_equal(codes[t], codes[n_frames - t])


@PROPERTY
@given(data=st.data())
def test_kl_per_dim_is_one_non_negative_value_per_dimension(data):
    n, d = data.draw(st.integers(1, 20), label="n"), data.draw(st.integers(1, 16), label="d")
    dtype = data.draw(st.sampled_from(FLOAT_DTYPES), label="dtype")
    mu = data.draw(hnp.arrays(dtype, (n, d), elements=st.floats(-10, 10, width=32)), label="z_mean")
    lv = data.draw(hnp.arrays(dtype, (n, d), elements=st.floats(-10, 10, width=32)), label="z_log_var")
    kl = kl_per_dim(mu, lv)
    assert kl.shape == (d,) and np.isfinite(kl).all()
    assert (kl >= -1e-9).all()
    expected = np.mean(0.5 * (mu.astype(float) ** 2 + np.exp(lv.astype(float)) - 1 - lv.astype(float)), axis=0)
    np.testing.assert_allclose(kl, expected, rtol=1e-9, atol=1e-12)
    assert (kl_per_dim(np.zeros((n, d)), np.zeros((n, d))) == 0).all()


@PROPERTY
@given(data=st.data())
def test_kl_per_dim_of_nan_or_inf_codes_does_not_raise(data):
    n, d = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))
    anything = st.floats(allow_nan=True, allow_infinity=True)
    mu = data.draw(hnp.arrays(np.float64, (n, d), elements=anything))
    lv = data.draw(hnp.arrays(np.float64, (n, d), elements=anything))
    with np.errstate(all="ignore"):
        assert kl_per_dim(mu, lv).shape == (d,)


@PROPERTY
@given(kl=st.lists(st.floats(allow_nan=False, allow_infinity=True) | st.sampled_from([0.0, 1.0]), max_size=16),
       data=st.data())
def test_rank_latents_orders_by_decreasing_kl_ties_by_index(kl, data):
    k = data.draw(st.none() | st.integers(1, 20), label="max_latents")
    full = rank_latents(kl)
    assert sorted(full) == list(range(len(kl)))
    for a, b in zip(full, full[1:]):
        assert kl[a] > kl[b] or (kl[a] == kl[b] and a < b)
    assert rank_latents(kl, max_latents=k) == (full if k is None else full[:k])


@PROPERTY
@given(kl=st.lists(st.floats(0, 100) | st.just(np.nan), min_size=2, max_size=8))
@example(kl=[1.0, np.nan, 2.0])  # sorting on a NaN key once gave [0, 1, 2]: the NaN hid the top latent
def test_rank_latents_puts_nan_last_and_keeps_the_finite_ones_in_order(kl):
    order = rank_latents(kl)
    finite = [d for d in order if not math.isnan(kl[d])]
    assert finite == sorted(finite, key=lambda d: (-kl[d], d))
    assert order[:len(finite)] == finite  # unknown KL (NaN) last
