"""SmolVLA in PyTorch (the only robot-stack package besides training that may import torch)."""
