"""Selection and staleness: plain values, no TensorFlow."""

from pathlib import Path

import pytest

from pipeline import plan, views
from pipeline.run import Checkpoint
from pipeline.settings import Picture


def ckpts(epochs):
    return [Checkpoint(e, Path(f"epoch_{e:04d}.weights.h5"), 100, e) for e in epochs]


def test_every_n_keeps_every_nth_and_always_the_last():
    assert [c.epoch for c in plan.select(ckpts(range(1, 13)), every=5)] == [5, 10, 12]
    assert [c.epoch for c in plan.select(ckpts(range(1, 11)), every=5)] == [5, 10]
    assert [c.epoch for c in plan.select(ckpts([1, 2, 3]), every=5)] == [3]


def test_every_counts_checkpoints_not_epoch_numbers():
    # a log-spaced run: every 2nd checkpoint, then the last
    assert [c.epoch for c in plan.select(ckpts([1, 2, 3, 4, 5, 6, 8, 10, 13]), every=2)] == [2, 4, 6, 10, 13]


def test_epochs_spec_parses_lists_and_ranges():
    assert plan.parse_epochs("1,5,10-12") == {1, 5, 10, 11, 12}
    assert [c.epoch for c in plan.select(ckpts(range(1, 13)), epochs={1, 5, 10, 11, 12, 40})] == [1, 5, 10, 11, 12]


@pytest.mark.parametrize("bad", ["a", "5-1", "", "1-x"])
def test_bad_epochs_spec_says_what_was_expected(bad):
    with pytest.raises(ValueError, match="1,5,10-20"):
        plan.parse_epochs(bad)


def test_a_frame_is_stale_when_missing_or_made_from_another_checkpoint_or_settings(tmp_path):
    view = views.get("walk")
    c = ckpts([1])[0]
    manifest = plan.Manifest(tmp_path)
    settings = Picture(pad=2)  # any frozen settings object
    assert [t.views for t in plan.stale_tasks(manifest, [c], [(view, settings)])] == [[(view, settings)]]
    (tmp_path / "walk").mkdir()
    (tmp_path / view.file(1)).write_bytes(b"png")
    manifest.files[view.file(1)] = plan.frame_record(c.stamp(), settings)
    assert plan.stale_tasks(manifest, [c], [(view, settings)]) == []
    assert plan.stale_tasks(manifest, [c], [(view, settings)], force=True) != []
    assert plan.stale_tasks(manifest, [c], [(view, Picture(pad=3))]) != []
    touched = Checkpoint(1, c.path, c.size, c.mtime_ns + 1)
    assert plan.stale_tasks(manifest, [touched], [(view, settings)]) != []


def test_a_record_is_what_the_settings_are_as_json(tmp_path):
    manifest = plan.Manifest(tmp_path)
    c = ckpts([1])[0]
    manifest.files["x.png"] = plan.frame_record(c.stamp(), Picture(channels=((0, "magenta"),)))
    (tmp_path / "x.png").write_bytes(b"png")
    manifest.save()
    again = plan.Manifest(tmp_path)  # tuples come back as lists: still fresh
    assert again.is_fresh("x.png", plan.frame_record(c.stamp(), Picture(channels=((0, "magenta"),))))


def test_an_unreadable_or_older_manifest_counts_as_empty(tmp_path):
    (tmp_path / plan.MANIFEST).write_text("{not json")
    assert plan.Manifest(tmp_path).files == {}
    (tmp_path / plan.MANIFEST).write_text('{"version": 1, "files": {"walk/epoch_0001.png": {}}}')
    assert plan.Manifest(tmp_path).files == {}
