"""Rendering beyond one machine: a real dask.distributed cluster on loopback,
and Ray where it installs, give the same bytes as loky."""

import importlib.util

import pytest



@pytest.fixture(scope="module")
def loky_out(render, tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("loky") / "o"
    assert render(tiny_run.run_dir, "--out", out, "--jobs", 2).exit_code == 0
    return out


def test_a_dask_local_cluster_renders_the_same_bytes_as_loky(render, digests, tiny_run, loky_out, tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        out = tmp_path / "dask"
        result = render(tiny_run.run_dir, "--out", out, "--backend", "dask", "--scheduler", cluster.scheduler_address)
        assert result.exit_code == 0, result.output
        workers = cluster.scheduler_info["workers"]
        assert len(workers) == 2
    assert digests(out) == digests(loky_out)


@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="ray is not installed (pip install 'vaeviz[ray]'); it is optional")
def test_ray_renders_the_same_bytes_as_loky(render, digests, tiny_run, loky_out, tmp_path):
    out = tmp_path / "ray"
    result = render(tiny_run.run_dir, "--out", out, "--backend", "ray")
    assert result.exit_code == 0, result.output
    assert digests(out) == digests(loky_out)


def test_a_backend_that_is_not_installed_says_how_to_install_it(render, tiny_run, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    result = render(tiny_run.run_dir, "--out", tmp_path, "--backend", "ray", "--force")
    assert result.exit_code == 2
    assert "pip install 'vaeviz[ray]'" in result.output
