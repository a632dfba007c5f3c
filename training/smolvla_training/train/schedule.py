"""LeRobot's `CosineDecayWithWarmupSchedulerConfig` as a pure function of the step.

docs/training.md ("Learning-rate schedule") states the formula. Being stateless, the schedule's
whole state is the step number, so a resumed run continues on exactly the same curve.
"""
from __future__ import annotations

from dataclasses import dataclass
import math


@dataclass(frozen=True)
class CosineWarmupSchedule:
    """Multiplier of the peak lr at each optimizer step (LeRobot's schedule, same auto-scaling)."""

    peak_lr: float
    decay_lr: float
    warmup_steps: int
    decay_steps: int

    @classmethod
    def for_run(cls, peak_lr: float, decay_lr: float, warmup_steps: int, decay_steps: int,
                total_steps: int) -> CosineWarmupSchedule:
        """Scale warmup and decay to a run shorter than the decay, as LeRobot's `build` does:
        W <- W * steps / D and D <- steps when steps < D (W rounded down to an int)."""
        if total_steps < decay_steps:
            warmup_steps = int(warmup_steps * total_steps / decay_steps)
            decay_steps = total_steps
        return cls(peak_lr, decay_lr, warmup_steps, max(decay_steps, 1))

    def factor(self, step: int) -> float:
        """lr / peak_lr at optimizer step `step` (0-based)."""
        if step < self.warmup_steps:  # linear from 1/(W+1) at step 0 to 1 at step W
            return (step + 1) / (self.warmup_steps + 1)
        alpha = self.decay_lr / self.peak_lr
        progress = min(step, self.decay_steps) / self.decay_steps  # cosine measured from step 0
        return alpha + (1 - alpha) * 0.5 * (1 + math.cos(math.pi * progress))

    def lr(self, step: int) -> float:
        return self.peak_lr * self.factor(step)
