"""plots.scatter keeps its figure between calls: the pixels must be those of a new figure."""

import threading

import numpy as np
import pytest

from pipeline import plots


def _fresh(*args, **kwargs) -> np.ndarray:
    plots._SCATTER.kept = None  # forget the kept figure: this call draws a new one
    return plots.scatter(*args, **kwargs)


@pytest.mark.parametrize("labelled, empty_first", [(True, False), (True, True), (False, False)])
def test_scatter_reusing_its_figure_draws_the_pixels_of_a_new_one(labelled, empty_first):
    rng = np.random.default_rng(0)
    classes = ("circle", "square", "triangle")
    first, second = rng.normal(size=(300, 2)), rng.normal(0.5, 0.7, size=(200, 2))
    labels_1 = rng.choice(classes, 300) if labelled else None
    labels_2 = rng.choice(classes[:2], 200) if labelled else None  # the third class has no point this time
    kw = dict(limits=((-3, 3), (-3, 3)), axes=("z0", "z1"), title="codes")
    if empty_first:  # the class missing from one call is missing from the first, not the second
        first, second, labels_1, labels_2 = second, first, labels_2, labels_1
    _fresh(first, labels_1, classes, **kw)
    reused = plots.scatter(second, labels_2, classes, **kw)
    new = _fresh(second, labels_2, classes, **kw)
    assert np.array_equal(reused, new)
    assert not np.array_equal(reused, _fresh(first, labels_1, classes, **kw))  # the points did move


def test_scatter_lays_out_again_when_the_limits_or_axes_change():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(100, 2))
    plots.scatter(points, None, None, limits=((-3, 3), (-3, 3)), axes=("z0", "z1"))
    for kw in (dict(limits=((-300, 300), (-3, 3)), axes=("z0", "z1")),
               dict(limits=((-3, 3), (-3, 3)), axes=("a much longer axis name", "z1"))):
        assert np.array_equal(plots.scatter(points, None, None, **kw), _fresh(points, None, None, **kw))


def test_each_thread_draws_on_its_own_figure():
    rng = np.random.default_rng(2)
    sets = [rng.normal(size=(150, 2)) for _ in range(4)]
    kw = dict(limits=((-3, 3), (-3, 3)), axes=("z0", "z1"))
    expected = [_fresh(points, None, None, **kw) for points in sets]
    drawn = [[None] * 10 for _ in sets]

    def draw(i):
        for k in range(10):
            drawn[i][k] = plots.scatter(sets[i], None, None, **kw)

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(len(sets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(d, expected[i]) for i, row in enumerate(drawn) for d in row)
