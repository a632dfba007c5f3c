"""Conversions between ROS messages and numpy. Imports message types, never rclpy.node.

- ``time``: builtin_interfaces/Time <-> int nanoseconds.
- ``joint_state``: sensor_msgs/JointState <-> arrays; ``pick_joints`` reorders by name.
- ``image``: sensor_msgs/Image (rgb8, bgr8, mono8) <-> numpy, zero-copy reads.
- ``compressed``: sensor_msgs/CompressedImage (JPEG, PNG) <-> RGB arrays through OpenCV.
- ``chunk`` / ``observation``: smolvla_msgs <-> ``core.types`` ActionChunkData / ObservationData.
- ``predict``: PredictChunk helpers: the answer every server builds (``chunk_answer``,
  ``failed_answer``), the null answer, the probe's answer checks.
- ``diagnostics``: the DiagnosticArray every node publishes on ``/diagnostics``.
- ``synthetic``: realistic synthetic camera frames and observations for probes and benchmarks.
- ``buffers``: one-memcpy numpy <-> ``array.array`` for message sequence fields.
- ``errors``: the typed ``ConversionError`` family.
"""
