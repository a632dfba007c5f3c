"""Where a run reports: OUT/metrics.jsonl (always), TensorBoard (when installed), OUT/training.png.

metrics.jsonl has one JSON object per line: training rows {step, loss, lr, grad_norm,
samples_per_s, epoch, elapsed_s} and validation rows {step, val_loss}. The plot is redrawn from
that file at every save and by `smolvla-train plot OUT`, so it never disagrees with the log.
"""
from __future__ import annotations

from collections.abc import Mapping
import json
from pathlib import Path
from typing import Any

METRICS = 'metrics.jsonl'
PLOT = 'training.png'


class MetricsLog:
    def __init__(self, out: Path, enabled: bool = True) -> None:
        self.path = out / METRICS
        self.enabled = enabled
        self._tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self._tb = SummaryWriter(str(out / 'tensorboard'))
            except ImportError:  # tensorboard is optional
                self._tb = None

    def write(self, row: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open('a') as f:
            f.write(json.dumps(dict(row)) + '\n')
        if self._tb is not None:
            for key, value in row.items():
                if key != 'step' and isinstance(value, (int, float)):
                    self._tb.add_scalar(key, value, int(row['step']))
            self._tb.flush()

    def truncate_after(self, step: int) -> None:
        """On resume: drop rows logged after the checkpoint (they will be logged again)."""
        if not self.enabled or not self.path.exists():
            return
        rows = [line for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line).get('step', 0) <= step]
        self.path.write_text(''.join(r + '\n' for r in rows))

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_metrics(out: Path) -> list[dict[str, Any]]:
    path = Path(out) / METRICS
    if not path.exists():
        raise FileNotFoundError(f'{path} does not exist (is {out} a smolvla-train output?)')
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot(out: Path) -> Path:
    """Draw loss (train, validation) and lr against the step into OUT/training.png."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    rows = read_metrics(out)
    train = [r for r in rows if 'loss' in r]
    val = [r for r in rows if 'val_loss' in r]
    fig, (ax_loss, ax_lr) = plt.subplots(2, 1, figsize=(8, 6), sharex=True,
                                         gridspec_kw={'height_ratios': [3, 1]})
    if train:
        ax_loss.plot([r['step'] for r in train], [r['loss'] for r in train], label='train')
        ax_lr.plot([r['step'] for r in train], [r['lr'] for r in train], color='tab:green')
    if val:
        ax_loss.plot([r['step'] for r in val], [r['val_loss'] for r in val], 'o-',
                     label='validation')
    ax_loss.set_yscale('log')
    ax_loss.set_ylabel('flow-matching loss')
    ax_loss.legend()
    ax_loss.grid(True, alpha=0.3)
    ax_lr.set_ylabel('lr')
    ax_lr.set_xlabel('optimizer step')
    ax_lr.grid(True, alpha=0.3)
    fig.tight_layout()
    path = Path(out) / PLOT
    tmp = path.with_name('.training.png.tmp')
    fig.savefig(tmp, dpi=100, format='png')
    plt.close(fig)
    tmp.replace(path)
    return path
