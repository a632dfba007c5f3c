"""MuJoCo simulation of the SO-101 pick task (no rclpy).

MuJoCo picks its OpenGL backend when it is first imported: headless machines need EGL (Mesa
llvmpipe) or OSMesa, so EGL is the default here unless the user chose (MUJOCO_GL=osmesa/glfw).
"""
import os

os.environ.setdefault('MUJOCO_GL', 'egl')
