"""Live/bag parity: the executor's ObservationAssembler, fed the recorded streams, gives at every
grid time exactly the frames the converter wrote, and refuses the grid times it dropped."""
from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from rosbags.highlevel import AnyReader
from smolvla_training.convert.bag_source import iter_camera_frames, make_typestore
from smolvla_training.convert.converter import ConvertConfig, convert, plan_bag
from smolvla_training.convert.synthetic_bag import SEC, T0, BagSpec, regular, write_bag
from smolvla_training.dataset.reader import LeRobotDatasetReader

from smolvla_ros.core.observation.alignment import StaleStreamError
from smolvla_ros.core.observation.assembly import ObservationAssembler
from smolvla_ros.core.robot.dataset_units import DatasetUnits
from smolvla_ros.ros.compressed import decode_to_rgb
from smolvla_ros.ros.time import stamp_to_ns

CFG = ConvertConfig(vcodec='h264', progress=False)


def test_assembler_on_the_recorded_streams_equals_the_converted_frames(tmp_path,
                                                                      contract) -> None:
    end = T0 + 3 * SEC
    front = [t for t in regular(T0, end, 30, 3_000_000, 3) if not T0 + SEC <= t < T0 + 2 * SEC]
    spec = BagSpec(state=regular(T0, end, 100, 2_000_000, 1, drop=range(200, 205)),
                   action=regular(T0, end, 30, 1_000_000, 2),
                   cameras={'front': front,
                            'wrist': regular(T0, end, 30, 3_000_000, 4, drop=[40, 41])})
    bag = write_bag(tmp_path / 'bag', spec)
    result = convert([bag], contract, tmp_path / 'ds', CFG)
    _, plans, _ = plan_bag(bag, contract, CFG)
    assert result.episodes == len(plans) == 2  # the stalled front camera splits the recording

    # The live path: every recorded message into the executor's assembler, in bag order.
    assembler = ObservationAssembler(contract, capacity=10_000,
                                     decode=lambda cam, data: decode_to_rgb(data))
    reader = AnyReader([bag], default_typestore=make_typestore())
    reader.open()
    topics = {f'/{c.topic}': n for n, c in contract.cameras.items()}
    for conn, _t, raw in reader.messages():
        msg = reader.deserialize(raw, conn.msgtype)
        if conn.topic == '/joint_states':
            assembler.add_joint_state(stamp_to_ns(msg.header.stamp), msg.name, msg.position)
        elif conn.topic in topics:
            assembler.add_image(topics[conn.topic], stamp_to_ns(msg.header.stamp),
                                msg.data.copy())
    reader.close()

    units = DatasetUnits.from_contract(contract)
    data = pq.read_table(tmp_path / 'ds/data/chunk-000/file-000.parquet')
    state = np.stack(data.column('observation.state').to_numpy(zero_copy_only=False))
    dataset = LeRobotDatasetReader(tmp_path / 'ds')
    ts = make_typestore()
    row = 0
    for plan in plans:
        frames = {cam: list(iter_camera_frames(bag, contract, cam, plan.indices[cam], ts))
                  for cam in contract.camera_names}
        for k, t in enumerate(plan.grid):
            obs = assembler.assemble(int(t))
            np.testing.assert_array_equal(units.to_dataset(obs.state).astype(np.float32),
                                          state[row])
            for cam in contract.camera_names:
                np.testing.assert_array_equal(obs.images[cam], frames[cam][k])
            if k % 10 == 0:  # the decoded video frame is that image, up to H.264 loss
                item = dataset[row]
                for cam in contract.camera_names:
                    video = item[f'observation.images.{cam}'].transpose(1, 2, 0) * 255.0
                    assert np.abs(video - obs.images[cam]).mean() < 6.0
            row += 1
    assert row == len(dataset)
    # A grid time inside the stall: the live path refuses it too, naming the camera.
    gap_t = int(plans[0].grid[-1]) + round(SEC / 30)
    with pytest.raises(StaleStreamError, match='front'):
        assembler.assemble(gap_t)
    dataset.close()
