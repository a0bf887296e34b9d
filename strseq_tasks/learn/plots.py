"""Pictures a person looks at after a training run (matplotlib, no display needed)."""

from __future__ import annotations

import io
from collections.abc import Sequence


def training_png(history: Sequence[dict], reliability: Sequence[dict], title: str) -> bytes:
    """Learning curve (training loss, validation exact match per epoch) beside a reliability
    diagram of the held-out rows (accuracy against mean confidence per confidence bin)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (curve, calib) = plt.subplots(1, 2, figsize=(9, 3.4))
    epochs = [row["epoch"] for row in history]
    curve.plot(epochs, [row["train_loss"] for row in history], marker=".", color="tab:blue", label="training loss")
    curve.set_xlabel("epoch")
    curve.set_ylabel("training loss", color="tab:blue")
    exact = curve.twinx()
    exact.plot(epochs, [100 * row["val_exact"] for row in history], marker=".", color="tab:orange")
    exact.set_ylabel("validation exact match %", color="tab:orange")
    exact.set_ylim(0, 100)
    curve.set_title("learning curve")
    calib.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    if reliability:
        calib.scatter([r["confidence"] for r in reliability], [r["accuracy"] for r in reliability],
                      s=[20 + 200 * r["rows"] / max(x["rows"] for x in reliability) for r in reliability],
                      color="tab:green", label="held-out rows (size: count)")
    calib.set_xlim(0, 1)
    calib.set_ylim(0, 1)
    calib.set_xlabel("mean confidence")
    calib.set_ylabel("accuracy")
    calib.set_title("reliability (held-out)")
    calib.legend(loc="upper left", fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
