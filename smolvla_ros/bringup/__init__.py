"""Bringup profiles (config/profiles/*.yaml) shared by launch files and ``smolvla-ros up``."""
