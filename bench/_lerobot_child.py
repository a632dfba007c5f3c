"""LeRobot's own SmolVLA, timed chunk by chunk for bench/policy_latency.py (its LeRobot column)
and optimizer step by step for bench/train_step.py (its LeRobot rows).

Runs under a LeRobot venv's interpreter (Python >= 3.12, `pip install 'lerobot[smolvla]==0.6.1'`;
docs/policy.md, "The LeRobot column"), never under ours: it imports lerobot and torch, nothing
of smolvla_ros. bench/_lerobot_column.py starts it and writes what it reads: a policy directory
whose config.json is our config in LeRobot's encoding, its `vlm_model_name` a stand-in SmolVLM
directory (the VLM's config.json + a tokenizer, no weights), and the inputs our modes get
(safetensors; for training, our batch and optionally our weights). LeRobot's
`SmolVLAPolicy(config)` with `load_vlm_weights=False` builds the VLM from that config with random
weights, as ours does.

Protocol (JSON lines): argv[1] is the spec {"policy_dir", "inputs", "threads", "device"} and,
for bench/train_step.py, "train": {"weights": path or null}; once built the child writes
{"ready": true, ...versions, params, trainable, weights and RSS}; then for every request line
{"cmd": ...} one reply line. Without "train" (the policy in eval mode):

    chunk   {"ms", "shape", "finite"}: one LeRobot `predict_action_chunk` (resize with pad, prefix,
            the flow steps with the KV cache), timed alone
    memory  {"built_mib", "peak_mib", "inference_mib"}: the RSS high-water mark over one chunk,
            reset first (policy_latency.py's helpers, as for our modes' memory processes)
    flops   {"total", "vision"}: torch.utils.flop_counter over one chunk
    gemm    {"gflops"}: the 1024^3 F.linear rate in float32 with this torch

With "train" (train mode; the weights file, when given, is loaded first, strictly; the inputs are
a training batch plus "noise" and "time"; the RSS high-water mark is reset once everything is
built):

    grad    {"loss", "grad_norm"}: `SmolVLAPolicy.forward` with the given noise and time, backward,
            the total gradient norm; the gradients are cleared, the weights left as they were
    step    {"s", "loss", "finite", "peak_mib"}: one optimizer step as LeRobot's `update_policy`
            takes it (forward, backward, clip to the preset's grad_clip_norm, the preset's AdamW
            over the trainable parameters, zero_grad), timed alone; peak_mib since the reset

and in both modes

    quit    {"bye": true}, then exit

A failed request answers {"error": "..."}; the child keeps serving.
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import sys
import time
import traceback
from typing import Any, TextIO

from policy_latency import GEMM_N, current_rss_mib, peak_rss_mib, reset_peak_rss


class Peer:
    """The LeRobot policy, its inputs, and one handler per protocol command."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from lerobot.configs.policies import PreTrainedConfig
        from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy
        from safetensors.torch import load_file
        import torch

        self.torch = torch
        if spec.get('threads'):
            torch.set_num_threads(spec['threads'])
        self.device = torch.device(spec.get('device', 'cpu'))
        config = PreTrainedConfig.from_pretrained(spec['policy_dir'])
        config.device = self.device.type
        torch.manual_seed(0)
        self.policy = SmolVLAPolicy(config).to(self.device)
        tensors = {k: v.to(self.device) for k, v in load_file(spec['inputs']).items()}
        self.noise = tensors.pop('noise')
        self.time = tensors.pop('time', None)
        self.batch = tensors
        self.chunk_shape = (1, config.chunk_size, config.action_feature.shape[0])
        self.training = spec.get('train') is not None
        if self.training:
            self._setup_training(spec['train'])
        else:
            self.policy.eval()
        self.built_mib = self._allocated_mib()
        if self.training:
            reset_peak_rss()  # the step replies' peak: over the steps, as bench/train_step.py's

    def _setup_training(self, train: dict[str, Any]) -> None:
        """Train mode, our weights when given, and the optimizer LeRobot's trainer builds from
        the policy's preset (`SmolVLAConfig.get_optimizer_preset`)."""
        from safetensors.torch import load_file

        if train.get('weights'):
            self.policy.load_state_dict(load_file(train['weights'], device=str(self.device)),
                                        strict=True)
        self.policy.train()
        self.params = [p for p in self.policy.parameters() if p.requires_grad]
        preset = self.policy.config.get_optimizer_preset()
        self.clip_norm = preset.grad_clip_norm
        self.optimizer = preset.build(self.params)

    def _allocated_mib(self) -> float:
        if self.device.type == 'cuda':
            return self.torch.cuda.memory_allocated() / 2**20
        return current_rss_mib()

    def _sync(self) -> None:
        if self.device.type == 'cuda':
            self.torch.cuda.synchronize()

    def ready(self) -> dict[str, Any]:
        tensors = [*self.policy.parameters(), *self.policy.buffers()]
        return {
            'ready': True, 'python': platform.python_version(), 'torch': self.torch.__version__,
            'lerobot': importlib.metadata.version('lerobot'),
            'transformers': importlib.metadata.version('transformers'),
            'params': sum(p.numel() for p in self.policy.parameters()),
            'trainable': sum(p.numel() for p in self.policy.parameters() if p.requires_grad),
            'mode': 'train' if self.training else 'eval',
            'dtype': str(next(self.policy.parameters()).dtype).removeprefix('torch.'),
            'weights_mib': sum(t.numel() * t.element_size() for t in tensors) / 2**20,
            'threads': self.torch.get_num_threads(), 'built_mib': self.built_mib,
            'cpu_capability': self.torch.backends.cpu.get_cpu_capability(),
        }

    def _chunk(self) -> Any:
        # predict_action_chunk may rewrite batch entries (its observation queues): a fresh dict.
        return self.policy.predict_action_chunk(dict(self.batch), noise=self.noise)

    def chunk(self) -> dict[str, Any]:
        self._sync()
        t0 = time.perf_counter()
        actions = self._chunk()
        self._sync()
        ms = (time.perf_counter() - t0) * 1000.0
        return {'ms': ms, 'shape': list(actions.shape),
                'finite': bool(self.torch.isfinite(actions).all()),
                'expected_shape': list(self.chunk_shape)}

    def memory(self) -> dict[str, Any]:
        if self.device.type == 'cuda':
            self._sync()
            self.torch.cuda.reset_peak_memory_stats()
        else:
            reset_peak_rss()
        self._chunk()
        self._sync()
        peak = (self.torch.cuda.max_memory_allocated() / 2**20 if self.device.type == 'cuda'
                else peak_rss_mib())
        return {'built_mib': self.built_mib, 'peak_mib': peak,
                'inference_mib': peak - self.built_mib}

    def flops(self) -> dict[str, Any]:
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            self._chunk()
        by_module = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
        vision = (by_module.get('SmolVLMVisionTransformer', 0)
                  + by_module.get('SmolVLMConnector', 0))
        return {'total': counter.get_total_flops(), 'vision': vision}

    def gemm(self, reps: int = 3) -> dict[str, Any]:
        torch = self.torch
        a = torch.randn(GEMM_N, GEMM_N, device=self.device)
        b = torch.randn(GEMM_N, GEMM_N, device=self.device)
        torch.nn.functional.linear(a, b)
        self._sync()
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.nn.functional.linear(a, b)
        self._sync()
        return {'gflops': 2 * GEMM_N ** 3 * reps / (time.perf_counter() - t0) / 1e9}

    def grad(self) -> dict[str, Any]:
        loss, _ = self.policy.forward(dict(self.batch), noise=self.noise, time=self.time)
        loss.backward()
        norm = self.torch.nn.utils.clip_grad_norm_(self.params, float('inf'))
        self.optimizer.zero_grad()
        return {'loss': loss.item(), 'grad_norm': norm.item()}

    def step(self) -> dict[str, Any]:
        self._sync()
        t0 = time.perf_counter()
        loss, _ = self.policy.forward(dict(self.batch))
        loss.backward()
        self.torch.nn.utils.clip_grad_norm_(self.params, self.clip_norm)
        self.optimizer.step()
        self.optimizer.zero_grad()
        self._sync()
        seconds = time.perf_counter() - t0
        return {'s': seconds, 'loss': loss.item(), 'finite': bool(self.torch.isfinite(loss)),
                'peak_mib': peak_rss_mib()}

    def handlers(self) -> dict[str, Any]:
        """The commands this mode answers (besides quit)."""
        if self.training:
            return {'grad': self.grad, 'step': self.step}
        return {'chunk': self.chunk, 'memory': self.memory, 'flops': self.flops,
                'gemm': self.gemm}


def serve(peer: Peer, requests: TextIO, replies: TextIO) -> None:
    """Answer request lines until 'quit' or end of input."""
    handlers = peer.handlers()
    for line in requests:
        if not line.strip():
            continue
        try:
            cmd = json.loads(line).get('cmd')
            if cmd == 'quit':
                replies.write(json.dumps({'bye': True}) + '\n')
                replies.flush()
                return
            if cmd not in handlers:
                raise ValueError(f'unknown command {cmd!r}; known: quit, {", ".join(handlers)}')
            reply = handlers[cmd]()
        except Exception as exc:  # noqa: BLE001 - the parent gets the message, the child lives on
            traceback.print_exc(file=sys.stderr)
            reply = {'error': f'{type(exc).__name__}: {exc}'}
        replies.write(json.dumps(reply) + '\n')
        replies.flush()


def main() -> int:
    # The protocol owns the real stdout; anything the libraries print goes to stderr.
    replies = os.fdopen(os.dup(1), 'w', buffering=1)
    os.dup2(2, 1)
    try:
        peer = Peer(json.loads(sys.argv[1]))
    except Exception as exc:  # noqa: BLE001 - reported to the parent as the ready line
        traceback.print_exc(file=sys.stderr)
        replies.write(json.dumps({'error': f'{type(exc).__name__}: {exc}'}) + '\n')
        return 1
    replies.write(json.dumps(peer.ready()) + '\n')
    serve(peer, sys.stdin, replies)
    return 0


if __name__ == '__main__':
    sys.exit(main())
