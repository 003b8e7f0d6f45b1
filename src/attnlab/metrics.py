"""Classification metrics: accuracy, per-class precision, recall and F1, macro-F1 and the
confusion matrix, as text and as a picture.

With C the confusion matrix (row: true class, column: predicted class), for class k:
precision_k = C[k,k] / sum_i C[i,k], recall_k = C[k,k] / sum_j C[k,j], and
F1_k = 2 precision_k recall_k / (precision_k + recall_k); a ratio whose denominator is zero
counts as 0. Macro-F1 is the unweighted mean of F1_k over the classes (Sokolova & Lapalme 2009).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

CORNER = "true \\ predicted"


def as_labels(values: Any) -> np.ndarray:
    """Class indices from a list, a NumPy array or a tensor, as a flat int64 array."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.int64).reshape(-1)


def confusion_matrix(true: Any, predicted: Any, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts; entry [i, j]: examples of class i predicted as j."""
    true, predicted = as_labels(true), as_labels(predicted)
    if true.shape != predicted.shape:
        raise ValueError(f"{true.size} true labels but {predicted.size} predictions")
    for values in (true, predicted):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"class indices must lie in 0..{num_classes - 1}")
    flat = np.bincount(true * num_classes + predicted, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def precision_recall_f1(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall and F1 from a confusion matrix."""
    hits = np.diag(confusion).astype(np.float64)
    precision = ratio(hits, confusion.sum(axis=0))
    recall = ratio(hits, confusion.sum(axis=1))
    return precision, recall, ratio(2 * precision * recall, precision + recall)


def accuracy(true: Any, predicted: Any) -> float:
    true, predicted = as_labels(true), as_labels(predicted)
    return float((true == predicted).mean()) if true.size else 0.0


def macro_f1(confusion: np.ndarray) -> float:
    return float(precision_recall_f1(confusion)[2].mean())


def classification_report(true: Any, predicted: Any, classes: list[str]) -> dict[str, Any]:
    """Everything above in one JSON-ready dict: accuracy, macro_f1, per_class (precision,
    recall, f1, support by class name), confusion (rows true, columns predicted) and classes."""
    confusion = confusion_matrix(true, predicted, len(classes))
    precision, recall, f1 = precision_recall_f1(confusion)
    support = confusion.sum(axis=1)
    return {
        "accuracy": accuracy(true, predicted),
        "macro_f1": float(f1.mean()),
        "per_class": {
            name: {
                "precision": float(precision[k]),
                "recall": float(recall[k]),
                "f1": float(f1[k]),
                "support": int(support[k]),
            }
            for k, name in enumerate(classes)
        },
        "confusion": confusion.tolist(),
        "classes": list(classes),
    }


def render_confusion(confusion: np.ndarray, classes: list[str]) -> str:
    """The confusion matrix as aligned text: one row per true class, one column per predicted
    class, then each class's recall."""
    names = [str(c) for c in classes]
    width = max(max(len(n) for n in names), len(str(int(confusion.max(initial=0)))), 4)
    label = max(max(len(n) for n in names), len(CORNER))
    recall = precision_recall_f1(confusion)[1]
    lines = [f"{CORNER:<{label}} " + " ".join(f"{n:>{width}}" for n in names) + "  recall"]
    for name, row, r in zip(names, confusion, recall, strict=True):
        counts = " ".join(f"{int(v):>{width}}" for v in row)
        lines.append(f"{name:<{label}} {counts}  {r:6.3f}")
    return "\n".join(lines)


def plot_confusion(
    confusion: np.ndarray, classes: list[str], path: str | Path, title: str = "confusion matrix"
) -> Path:
    """Save the confusion matrix as a PNG heat map, each row normalised by its class's size
    (so colour is recall), with the counts written in the cells."""
    from matplotlib.figure import Figure  # here: matplotlib takes a while to import

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    k = len(classes)
    share = ratio(confusion.astype(np.float64), confusion.sum(axis=1, keepdims=True))
    size = min(max(3.0, 0.5 * k + 2.0), 16.0)
    fig = Figure(figsize=(size, size))  # no pyplot: no display, no global state
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    ax.set_xticks(range(k), [str(c) for c in classes], rotation=45 if k > 5 else 0)
    ax.set_yticks(range(k), [str(c) for c in classes])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if k <= 30:  # beyond that the numbers no longer fit their cells
        for i in range(k):
            for j in range(k):
                colour = "white" if share[i, j] > 0.5 else "black"
                ax.text(j, i, int(confusion[i, j]), ha="center", va="center", color=colour)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
