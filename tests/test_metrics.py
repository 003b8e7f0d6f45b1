import numpy as np
import pytest
import torch

from attnlab.metrics import (
    accuracy,
    classification_report,
    confusion_matrix,
    macro_f1,
    plot_confusion,
    precision_recall_f1,
    render_confusion,
)

# Worked by hand: 3 classes, 8 examples.
TRUE = [0, 0, 0, 1, 1, 2, 2, 2]
PRED = [0, 0, 1, 1, 2, 2, 2, 0]
CONFUSION = [[2, 1, 0], [0, 1, 1], [1, 0, 2]]
# class 0: precision 2/3, recall 2/3, F1 2/3; class 1: 1/2, 1/2, 1/2; class 2: 2/3, 2/3, 2/3
F1 = [2 / 3, 1 / 2, 2 / 3]


def test_confusion_matrix_counts_true_rows_against_predicted_columns():
    assert confusion_matrix(TRUE, PRED, 3).tolist() == CONFUSION
    assert confusion_matrix(torch.tensor(TRUE), np.array(PRED), 3).tolist() == CONFUSION


def test_per_class_scores_and_macro_f1_match_hand_computation():
    precision, recall, f1 = precision_recall_f1(np.array(CONFUSION))
    assert np.allclose(precision, [2 / 3, 1 / 2, 2 / 3])
    assert np.allclose(recall, [2 / 3, 1 / 2, 2 / 3])
    assert np.allclose(f1, F1)
    assert macro_f1(np.array(CONFUSION)) == pytest.approx(sum(F1) / 3)
    assert accuracy(TRUE, PRED) == pytest.approx(5 / 8)


def test_asymmetric_precision_and_recall():
    # class 1 predicted once, correctly; 3 examples of class 1 exist
    confusion = confusion_matrix([0, 0, 1, 1, 1], [0, 0, 0, 0, 1], 2)
    precision, recall, f1 = precision_recall_f1(confusion)
    assert np.allclose(precision, [2 / 4, 1.0]) and np.allclose(recall, [1.0, 1 / 3])
    assert np.allclose(f1, [2 * 0.5 / 1.5, 2 * (1 / 3) / (4 / 3)])


def test_never_predicted_or_absent_classes_score_zero_not_nan():
    confusion = confusion_matrix([0, 0, 1], [0, 0, 0], 3)  # class 2 absent, 1 never predicted
    precision, recall, f1 = precision_recall_f1(confusion)
    assert np.isfinite(f1).all()
    assert precision[1] == recall[1] == f1[1] == 0.0 and f1[2] == 0.0
    assert macro_f1(confusion) == pytest.approx((0.8 + 0 + 0) / 3)


def test_out_of_range_classes_or_mismatched_lengths_are_errors():
    with pytest.raises(ValueError, match="0..1"):
        confusion_matrix([0, 2], [0, 1], 2)
    with pytest.raises(ValueError, match="predictions"):
        confusion_matrix([0, 1], [0], 2)


def test_report_names_classes_and_is_json_ready():
    import json

    report = classification_report(TRUE, PRED, ["neg", "neu", "pos"])
    assert json.loads(json.dumps(report)) == report
    assert report["per_class"]["neu"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert report["confusion"] == CONFUSION and report["accuracy"] == 5 / 8


def test_text_rendering_shows_every_count_in_its_row():
    text = render_confusion(np.array(CONFUSION), ["neg", "neu", "pos"])
    lines = text.splitlines()
    assert lines[0].split()[-4:] == ["neg", "neu", "pos", "recall"]
    assert lines[1].split() == ["neg", "2", "1", "0", "0.667"]
    assert lines[3].split() == ["pos", "1", "0", "2", "0.667"]


def test_png_is_written(tmp_path):
    path = plot_confusion(np.array(CONFUSION), ["neg", "neu", "pos"], tmp_path / "plots" / "c.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
