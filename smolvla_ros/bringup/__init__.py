"""Bringup profiles (config/profiles/*.yaml) shared by launch files and ``smolvla-ros up``.

One YAML file per bringup says which nodes and processes run, with which parameters, remappings
and arguments. Both front ends read it through the same ROS-free loader (:mod:`.profile`), so a
``ros2 launch smolvla_ros X.launch.py`` and a ``smolvla-ros up X`` start exactly the same command
lines. Modules:

- :mod:`.errors`: the typed errors every front end reports.
- :mod:`.substitution`: ``$(arg name)``, ``$(env NAME [default])`` and ``$(dirname)``.
- :mod:`.profile`: read and validate a profile file into frozen dataclasses.
- :mod:`.resolve`: apply argument values, giving plain process specs and ROS argv.
- :mod:`.executables`: find a node's executable the way ``ros2 run`` and a venv would.
- :mod:`.supervisor`: run the processes, prefix their output, forward signals.
- :mod:`.up`: the ``smolvla-ros up`` subcommand.
- :mod:`.launch_support`: the same resolved profile as ``launch`` / ``launch_ros`` actions.
- :mod:`.processes` and :mod:`.watcher`: start, stop and watch a stack from tests and benchmarks.
"""
