"""Disentanglement metrics (pipeline/metrics.py) on synthetic codes with known answers, and against
disentanglement_lib, the reference implementation, on the same codes."""

import math
import sys
import types

import numpy as np
import pytest

from pipeline import metrics

N, K = 2000, 3


@pytest.fixture(scope="module")
def factors():
    return np.random.default_rng(0).integers(0, 6, size=(N, K))


def noisy(x, scale=0.05, seed=1):
    return x + scale * np.random.default_rng(seed).standard_normal(x.shape)


def test_identity_codes_score_near_1_on_mig_and_dci(factors):
    codes = noisy(factors.astype(float))
    assert metrics.mig(codes, factors) > 0.9
    d = metrics.dci(codes, factors)
    assert d["disentanglement"] > 0.9 and d["completeness"] > 0.9 and d["informativeness"] > 0.95


def test_constant_codes_score_0_on_mig_and_sap(factors):
    codes = np.ones((N, 4))
    assert metrics.mig(codes, factors) == pytest.approx(0.0, abs=1e-9)
    assert metrics.sap(codes, factors) == pytest.approx(0.0, abs=0.02)


def test_duplicated_latents_score_near_0_on_mig(factors):
    codes = noisy(np.repeat(factors.astype(float), 2, axis=1), scale=1e-9)  # each factor in two latents
    assert metrics.mig(codes, factors) < 0.05


def test_duplicated_latents_give_dci_completeness_near_1_minus_ln2_over_ln_d(factors):
    codes = noisy(np.repeat(factors.astype(float), 2, axis=1), scale=1e-9)
    d = codes.shape[1]
    assert metrics.dci(codes, factors)["completeness"] == pytest.approx(1 - math.log(2) / math.log(d), abs=0.06)


def test_dci_informativeness_is_test_accuracy(factors):
    codes = np.random.default_rng(5).standard_normal((N, 4))  # no information: chance accuracy of 6 levels
    assert metrics.dci(codes, factors)["informativeness"] == pytest.approx(1 / 6, abs=0.05)


def test_continuous_factors_bin_into_their_levels_or_ten_equal_bins():
    assert list(metrics.bin_factors(np.array([0.5, 0.25, 0.5, 1.0]))) == [1, 0, 1, 2]
    binned = metrics.bin_factors(np.linspace(0, 1, 1000))
    assert binned.min() == 0 and binned.max() == 9 and len(np.unique(binned)) == 10


def test_bad_shapes_and_float_factors_are_refused_naming_the_fix():
    with pytest.raises(ValueError, match=r"codes must be \(N, D\)"):
        metrics.mig(np.zeros(10), np.zeros((10, 1), int))
    with pytest.raises(ValueError, match="bin_factors"):
        metrics.mig(np.zeros((20, 2)), np.zeros((20, 1)))


# --- disentanglement_lib, the peer implementation ----------------------------------------------------


def disentanglement_lib():
    """Import disentanglement_lib's metrics, or skip saying why.

    Its TF1-only `gin.tf` import is stubbed out and gin's renamed `blacklist`
    argument passed as `denylist`: the metrics themselves are numpy and scikit-learn.
    """
    gin = pytest.importorskip("gin", reason="disentanglement-lib (the dev extra) is not installed")
    pytest.importorskip("disentanglement_lib", reason="disentanglement-lib (the dev extra) is not installed")
    sys.modules.setdefault("gin.tf", types.ModuleType("gin.tf"))
    real = gin.configurable
    if not getattr(real, "_vaeviz_denylist", False):
        def configurable(*args, blacklist=None, **kwargs):
            return real(*args, **kwargs) if blacklist is None else real(*args, denylist=blacklist, **kwargs)
        configurable._vaeviz_denylist = True
        gin.configurable = configurable
    from disentanglement_lib.evaluation.metrics import dci, mig, sap_score, utils

    gin.clear_config()
    gin.bind_parameter("discretizer.discretizer_fn", utils._histogram_discretize)
    gin.bind_parameter("discretizer.num_bins", metrics.MIG_BINS)
    return mig, sap_score, dci


@pytest.fixture(scope="module")
def mixed(factors):
    """Codes with three informative latents of different noise and two of pure noise."""
    rng = np.random.default_rng(2)
    return np.concatenate([factors + rng.normal(0, [0.1, 0.5, 1.5], (N, K)), rng.standard_normal((N, 2))], axis=1)


def test_mig_equals_disentanglement_libs(mixed, factors):
    mig, _, _ = disentanglement_lib()
    assert metrics.mig(mixed, factors) == pytest.approx(mig._compute_mig(mixed.T, factors.T)["discrete_mig"], abs=1e-9)


def test_sap_equals_disentanglement_libs(mixed, factors):
    _, sap_score, _ = disentanglement_lib()
    n = int(N * metrics.TRAIN_SHARE)
    theirs = sap_score._compute_sap(mixed[:n].T, factors[:n].T, mixed[n:].T, factors[n:].T, False)["SAP_score"]
    assert metrics.sap(mixed, factors) == pytest.approx(theirs, abs=1e-9)


def test_dci_from_an_importance_matrix_equals_disentanglement_libs():
    """The estimators differ (a random forest here, gradient boosting there); the definitions do not."""
    _, _, dci = disentanglement_lib()
    importance = np.abs(np.random.default_rng(3).standard_normal((5, 3)))
    ours = metrics.dci_scores(importance)
    assert ours["disentanglement"] == pytest.approx(dci.disentanglement(importance), abs=1e-9)
    assert ours["completeness"] == pytest.approx(dci.completeness(importance), abs=1e-9)


def test_dci_of_the_random_forest_is_close_to_gradient_boosting(mixed, factors):
    _, _, dci = disentanglement_lib()
    n = 800  # gradient boosting on more takes too long for a test
    theirs = dci._compute_dci(mixed[:n].T, factors[:n].T, mixed[N - 400:].T, factors[N - 400:].T)
    ours = metrics.dci(mixed, factors)
    assert ours["disentanglement"] == pytest.approx(theirs["disentanglement"], abs=0.1)
    assert ours["completeness"] == pytest.approx(theirs["completeness"], abs=0.1)
