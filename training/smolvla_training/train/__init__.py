"""SmolVLA training (`smolvla-train`): LeRobot's SmolVLA recipe over LeRobot v3.0 datasets.

docs/training.md is the user guide; the modules here, by job:
- config.py: the run's settings (LeRobot's presets, all overridable) and the command line,
- schedule.py: LeRobot's cosine-decay-with-warmup learning-rate schedule,
- frame_cache.py / data.py: frames at model resolution, batches of (observation, action chunk),
- model_init.py: a policy from a preset or a checkpoint, the dataset's features mapped onto it,
- checkpoints.py: LeRobot's checkpoint layout, atomic saves, bit-exact resume,
- loop.py: the training loop (one process or torch DDP), metrics.py: logs and plots.
"""
