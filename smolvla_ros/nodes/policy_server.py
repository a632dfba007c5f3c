"""policy_server: SmolVLA behind the ``predict_chunk`` service, on this host or a remote GPU host.

At start it loads the checkpoint (a LeRobot policy directory, a preset name, or the name of a
policy shipped in the package's policies/ folder, smolvla_ros/paths.py), checks the
checkpoint's image/state/action features against the robot contract (after ``rename_map``) and
fails fast naming the exact missing/extra keys, then warms up before it offers the service
(all ROS-free in policy/serving.py, which ``smolvla-ros eval`` shares). Each
request is decoded, converted to dataset units (the contract's one conversion), predicted in the
inference thread (core.inference.inference_worker) and answered; every request gets an answer
(a failure says why), there is no similarity filtering. ``/diagnostics`` carries the p50/p95
server time.

Threads (docs/ARCHITECTURE.md, "Threading"): every callback runs on the executor thread. The
service callback is a coroutine that hands the decoded observation to the inference thread and
awaits the chunk (node_main.ThreadResult), so while a request waits on inference the executor
sleeps in its wait set and keeps publishing diagnostics. The service has a mutually exclusive
callback group of its own: one request at a time, the next waits in the service queue until the
current one is answered (the inference thread could not run two at once anyway).

Remote use: run this node on the GPU machine with the same ``ROS_DOMAIN_ID`` (and namespace) as
the robot; the executor finds the service through DDS discovery (docs/async_inference.md).
torch is imported only through smolvla_ros.policy, lazily, so the module imports without it.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
import sys

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from smolvla_msgs.srv import PredictChunk

from smolvla_ros.core.inference.inference_worker import InferenceWorker, WorkerConfig
from smolvla_ros.core.inference.policy_io import PolicyIO, parse_rename_map, positional_rename_map
from smolvla_ros.core.robot.contract import RobotContract, default_contract_path, load_contract
from smolvla_ros.core.robot.dataset_units import DatasetUnits
from smolvla_ros.core.types import InvalidDataError
from smolvla_ros.nodes.node_main import ThreadResult, run_node
from smolvla_ros.nodes.params import read_only_parameter
from smolvla_ros.paths import DEFAULT_POLICY_NAME, DefaultPolicyMissingError, resolve_checkpoint
from smolvla_ros.policy.configuration_smolvla import (  # torch-free
    SmolVLAConfig,
    SmolVLAConfigError,
)
from smolvla_ros.policy.serving import (  # torch-free at import
    DTYPES,
    PolicySetupError,
    load_policy,
    predict_fn,
    slow_warmup,
    warm_up,
)
from smolvla_ros.ros.diagnostics import OK, WARN, diagnostic_array, diagnostic_status
from smolvla_ros.ros.errors import ConversionError
from smolvla_ros.ros.observation import msg_to_observation
from smolvla_ros.ros.predict import chunk_answer, failed_answer


class PolicyServer(Node):
    """Serves ``predict_chunk`` with a SmolVLAPolicy (see the module docstring)."""

    def __init__(self, **kwargs) -> None:
        super().__init__('policy_server', **kwargs)
        p = partial(read_only_parameter, self)
        checkpoint = p('checkpoint', 'tiny', 'LeRobot policy directory, preset name (tiny, '
                       f'smolvla_base) or shipped policy name ({DEFAULT_POLICY_NAME})')
        device = p('device', 'cpu', "torch device, e.g. 'cpu', 'cuda', 'cuda:1'")
        self.dtype = p('dtype', 'float32', f'weights dtype, one of {DTYPES}')
        self.num_steps = p('num_steps', 0, 'flow-matching steps (0: the checkpoint value)')
        force_dtype = p('force_dtype', False, 'use dtype even where the device only emulates it '
                        '(bfloat16 on a CPU without AVX512-BF16/AMX: slower than float32, which '
                        'is used otherwise; docs/policy.md)')
        compile_model = p('compile', False, 'torch.compile the sampler (CPU or GPU; the warm-up '
                          'pays the compilation)')
        compile_mode = p('compile_mode', 'default', "torch.compile mode ('default', "
                         "'max-autotune', 'reduce-overhead': CUDA graphs)")
        contract_file = p('contract_file', '', 'robot contract YAML (empty: config/contracts)')
        calibration = p('calibration_file', '', "arm calibration JSON (empty: the contract's)")
        rename = p('rename_map', '', 'camera renames, e.g. "front=camera1,wrist=camera2" (empty: '
                   "the contract's names; an untrained preset's cameras are fed in order)")
        extra_ms = p('extra_latency_ms', 0.0, 'sleep added to every answer (emulates a slow host)')
        warmup = p('warmup_runs', 2, 'predictions run before the service is offered')
        max_latency = p('max_latency_ms', 0.0, 'judge the warm-up slow when every run took longer '
                        '(0: the chunk horizon, chunk_size x dt; < 0: never)')
        self.slow_warmup = p('slow_warmup', 'warn', "a slow warm-up: 'warn' (serve anyway, "
                             "/diagnostics WARN with the numbers) or 'refuse' (exit at start)")
        threads = p('torch_threads', 0, 'torch intra-op threads (0: torch default)')
        diag_period = p('diagnostics_period_s', 1.0, '/diagnostics period (s)')
        try:
            self.checkpoint = resolve_checkpoint(checkpoint)  # a shipped name -> its directory
        except DefaultPolicyMissingError as exc:
            raise PolicySetupError(str(exc)) from None
        if self.dtype not in DTYPES:
            raise PolicySetupError(f'dtype must be one of {DTYPES}, got {self.dtype!r}')
        if self.slow_warmup not in ('warn', 'refuse'):
            raise PolicySetupError(f"slow_warmup must be 'warn' or 'refuse', got "
                                   f'{self.slow_warmup!r}')
        if self.num_steps < 0 or warmup < 0 or threads < 0:
            raise PolicySetupError('num_steps, warmup_runs and torch_threads must be >= 0')

        contract = load_contract(contract_file or default_contract_path())
        units = DatasetUnits.from_contract(contract, calibration or None)
        self.io = PolicyIO(contract, units, self._rename_map(rename, contract))
        # Frames are bounded by their header before decoding (ros/compressed.py): a request
        # frame larger than the contract's camera or policy size is refused unread.
        self._max_sizes = {c: contract.max_frame_size(c) for c in contract.camera_names}
        log = self.get_logger().info
        policy = load_policy(self.checkpoint, self.io, device=device, dtype=self.dtype,
                             threads=threads, compile_model=compile_model,
                             compile_mode=compile_mode, force_dtype=force_dtype, log=log)
        self.dtype = str(policy.dtype).removeprefix('torch.')  # float32 when bf16 is not native
        self.worker = InferenceWorker(
            predict_fn(policy, self.num_steps), self.io,
            WorkerConfig(policy.config.chunk_size, policy_id=str(self.checkpoint),
                         extra_latency_ms=float(extra_ms)))
        horizon_ms = policy.config.chunk_size * contract.dt * 1e3
        try:
            times_ms = warm_up(self.worker, warmup, max_latency or horizon_ms, log=log,
                               refuse=self.slow_warmup == 'refuse')
        except PolicySetupError:
            self.worker.shutdown()
            raise
        self._warmup_ms = min(times_ms, default=float('nan'))
        self._warmup_problem = slow_warmup(times_ms, max_latency or horizon_ms, horizon_ms)
        if self._warmup_problem:
            self.get_logger().warning(f'{self._warmup_problem}; serving anyway '
                                      '(slow_warmup:=refuse refuses instead)')
        self._inference = ThreadResult(self)
        # Separate groups: an awaiting request holds its group, and the timer must still run.
        self._service = self.create_service(PredictChunk, 'predict_chunk', self._on_request,
                                            callback_group=MutuallyExclusiveCallbackGroup())
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_timer(diag_period, self._publish_diagnostics,
                          callback_group=MutuallyExclusiveCallbackGroup())
        self.get_logger().info(
            f'serving {self._service.srv_name}: {self.checkpoint} on {device} {self.dtype}, '
            f'cameras {dict(self.io.rename)}, chunk {policy.config.chunk_size} x '
            f'{contract.dt * 1e3:.1f} ms, extra latency {extra_ms:g} ms')

    def _rename_map(self, rename: str, contract: RobotContract) -> dict[str, str]:
        """The rename map given, or else the contract's names, or else for an untrained preset
        (random weights, placeholder camera names) its cameras fed in contract order.

        So the profiles need no rename_map both for a checkpoint trained on the contract's cameras
        (the simulator's learned policies) and for the 'tiny' preset (camera1, camera2), while a
        trained checkpoint with other names still fails at start naming the keys.
        """
        given = parse_rename_map(rename, contract)
        if rename.strip():
            return given
        preset = _preset_image_features(str(self.checkpoint))
        if preset is None or set(preset) == set(given.values()):
            return given
        mapping = positional_rename_map(contract, preset)
        self.get_logger().info(
            f'rename_map empty and {self.checkpoint!r} is an untrained preset: its cameras are '
            f'fed in contract order ({", ".join(f"{c} -> {k}" for c, k in mapping.items())})')
        return mapping

    async def _on_request(self, request: PredictChunk.Request,
                          response: PredictChunk.Response) -> PredictChunk.Response:
        msg = request.observation
        try:
            obs = msg_to_observation(msg, max_sizes=self._max_sizes)
            chunk = await self._inference.wait(self.worker.submit(obs))
        except (ConversionError, InvalidDataError, ValueError, RuntimeError) as exc:
            failed = failed_answer(response, msg, exc)
            self.get_logger().warning(f'request {msg.request_id} failed: {failed.message}',
                                      throttle_duration_sec=1.0)
            return failed
        return chunk_answer(response, chunk)

    def _publish_diagnostics(self) -> None:
        stats = self.worker.stats()  # one snapshot: the inference thread writes these
        summary = stats.latency
        horizon_ms = self.worker.config.chunk_size * self.io.contract.dt * 1e3
        level, text = OK, 'serving'
        if summary.count and summary.p95_ms > horizon_ms:
            level = WARN
            text = f'p95 {summary.p95_ms:.0f} ms exceeds the chunk horizon {horizon_ms:.0f} ms'
        elif not summary.count and self._warmup_problem:  # until requests measure it
            level, text = WARN, self._warmup_problem
        values = {'checkpoint': str(self.checkpoint), 'dtype': self.dtype,
                  'num_steps': str(self.num_steps), 'answered': str(stats.answered),
                  'failed': str(stats.failed),
                  'extra_latency_ms': f'{self.worker.config.extra_latency_ms:g}',
                  'warmup_best_ms': f'{self._warmup_ms:.1f}',
                  **{f'latency_{k}': f'{v:.2f}' if isinstance(v, float) else str(v)
                     for k, v in summary.as_dict().items()}}
        self._diag_pub.publish(diagnostic_array(self.get_clock().now().nanoseconds, [
            diagnostic_status(f'{self.get_fully_qualified_name()}: inference', level, text,
                              str(self.checkpoint), values)]))

    def destroy_node(self) -> None:
        worker = getattr(self, 'worker', None)  # absent when the setup failed part-way
        if worker is not None:
            worker.shutdown()
        super().destroy_node()


def _preset_image_features(checkpoint: str) -> tuple[str, ...] | None:
    """The image features of a preset name (random weights), None for a checkpoint directory."""
    if Path(checkpoint).expanduser().is_dir():
        return None
    try:
        return SmolVLAConfig.preset(checkpoint).image_features
    except SmolVLAConfigError:
        return None  # not a preset: loading it reports what is wrong


def main(args: list[str] | None = None) -> int:
    """Console script ``policy_server``; exit 2 when the setup is invalid (named in the log)."""
    return run_node(PolicyServer, 'policy_server', args, setup_errors=(ValueError, RuntimeError))


if __name__ == '__main__':
    sys.exit(main())
