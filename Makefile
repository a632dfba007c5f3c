# smolvla_ros: the two commands of the README are `make demo` and `make test`; both set up .venv
# first when it is missing (pip-only path, DESIGN §3). On a ROS install use colcon instead (README).

PYTHON     ?= python3
VENV       ?= .venv
# torch goes in first and pinned: an unpinned torch pulls a multi-GB CUDA build. Override for a GPU
# machine, e.g. `make setup TORCH_SPEC='torch==2.9.1 --index-url https://download.pytorch.org/whl/cu128'`.
TORCH_SPEC ?= torch==2.13.0
PY          = $(VENV)/bin/python
PIP         = $(PY) -m pip
STAMP       = $(VENV)/.smolvla-setup
MSG_BUILD   = build/smolvla_msgs
MSG_SOURCES = $(wildcard msg/msg/*.msg msg/srv/*.srv) msg/CMakeLists.txt msg/package.xml $(wildcard msg/cmake/*.cmake)
PYTEST_ARGS ?=

export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup test lint demo bench clean distclean msgs help

help:
	@echo "make demo      SO-101 pick in MuJoCo through the async executor; writes demo_out/ (sets up .venv if missing)"
	@echo "make test      run the test suite (sets up .venv if missing)"
	@echo "make setup     create/update .venv: torch ($(TORCH_SPEC)), ROS 2 Kilted wheels, smolvla_msgs, packages"
	@echo "make bench     run the benchmarks in bench/ and print their tables"
	@echo "make lint      ruff"

setup: $(STAMP)

$(STAMP): requirements/*.txt setup.py training/setup.py $(MSG_SOURCES)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -r requirements/ros-wheels.txt -r requirements/runtime.txt \
	    -r requirements/policy.txt -r requirements/dev.txt
	$(MAKE) --no-print-directory msgs
	$(PIP) install -q --no-deps -e . -e training
	$(PY) -c "import rclpy, smolvla_msgs.msg, smolvla_ros, smolvla_training"
	@touch $@
	@echo "setup done: $(VENV) is ready"

# Build the smolvla_msgs interface package with plain CMake into the venv prefix, so that nothing
# has to be sourced at run time. The include-path workaround lives in msg/cmake/.
msgs:
	@mkdir -p build
	AMENT_PREFIX_PATH=$(abspath $(VENV)) cmake -S msg -B $(MSG_BUILD) -G Ninja \
	    -DCMAKE_PREFIX_PATH=$(abspath $(VENV)) -DCMAKE_INSTALL_PREFIX=$(abspath $(VENV)) \
	    -DPython3_EXECUTABLE=$(abspath $(PY)) -DBUILD_TESTING=OFF > $(MSG_BUILD).log 2>&1 \
	  || { cat $(MSG_BUILD).log; exit 1; }
	cmake --build $(MSG_BUILD) -j2 >> $(MSG_BUILD).log 2>&1 || { tail -50 $(MSG_BUILD).log; exit 1; }
	cmake --install $(MSG_BUILD) >> $(MSG_BUILD).log 2>&1 || { tail -50 $(MSG_BUILD).log; exit 1; }

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check smolvla_ros training test bench launch setup.py

demo: setup
	$(PY) -m smolvla_ros.cli demo

bench: setup
	$(PY) -m smolvla_ros.cli bench all

clean:
	rm -rf build install log demo_out .pytest_cache

distclean: clean
	rm -rf $(VENV)
