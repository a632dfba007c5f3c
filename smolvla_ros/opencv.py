"""OpenCV for the whole package, imported once with its worker pool pinned.

OpenCV parallelises resize/colour conversion over a thread pool sized to the machine. For the
small frames this stack handles that buys nothing, and on a 2-core robot computer the pool's
spinning workers starved the chunk executor's control tick: one `cv2.resize` anywhere in the
process made the executor stall for up to ~1 s at a time (test_chunk_executor's analytic-policy
test failed after any camera test). The pool size must be set before the first parallel call,
so every module imports cv2 from here. Override with SMOLVLA_OPENCV_THREADS=N (0 = OpenCV's
default) on a machine with cores to spare.
"""
from __future__ import annotations

import os

import cv2

_threads = int(os.environ.get('SMOLVLA_OPENCV_THREADS', '1'))
if _threads > 0:
    cv2.setNumThreads(_threads)

__all__ = ['cv2']
