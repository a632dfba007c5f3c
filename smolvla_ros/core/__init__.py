"""ROS-free logic of the stack, numpy only, grouped by job (docs/ARCHITECTURE.md, "The Python
package split"). The innermost layer: nothing here imports hardware/, sim/, ros/, nodes/, bringup/,
cli/ or policy/ (test/test_house_rules.py)."""
