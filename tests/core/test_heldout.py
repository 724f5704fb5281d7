"""core.heldout: threshold costs from stored held-out probabilities."""

import pytest

from core.artifacts import load_held_out
from core.heldout import describe_costs


def _write(tmp_path):
    rows = ["image_id,split,label,region,hardware,probability_fractured",
            "a,test,1,hand,0,0.9", "b,test,1,hand,0,0.4", "c,test,0,leg,0,0.6",
            "d,test,0,leg,0,0.1", "e,test,0,leg,1,0.2", "f,val,1,leg,0,0.8"]
    (tmp_path / "probabilities.csv").write_text("\n".join(rows) + "\n")


def test_threshold_costs_count_the_stored_split(tmp_path):
    _write(tmp_path)
    held_out = load_held_out(tmp_path, "test")
    assert len(held_out.labels) == 5
    point = held_out.at_threshold(0.5)
    assert (point.tp, point.fn, point.fp, point.tn) == (1, 1, 1, 2)
    assert describe_costs(point) == "catches 1 of 2 fractures; 1 false alarm in 3 normals"
    lower = held_out.at_threshold(0.15)
    assert describe_costs(lower) == "catches 2 of 2 fractures; 2 false alarms in 3 normals"


def test_missing_file_and_split_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="training.evaluate"):
        load_held_out(tmp_path)
    _write(tmp_path)
    with pytest.raises(ValueError, match="no rows for split 'train'"):
        load_held_out(tmp_path, "train")


def test_shipped_probabilities_load():
    held_out = load_held_out()
    point = held_out.at_threshold(0.5)
    assert point.n_positive + point.n_negative == len(held_out.labels)
