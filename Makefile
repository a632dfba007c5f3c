# smolvla_ros: the two commands of the README are `make demo` and `make test`; both set up .venv
# first when it is missing (pip-only path, docs/ARCHITECTURE.md "Install paths"). On a ROS
# install use colcon instead (README).

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
# make demo DEMO_ARGS='--oracle' (or --checkpoint DIR, --duration 10; smolvla-ros demo --help)
DEMO_ARGS ?=

export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup test lint demo bench clean distclean msgs help

help:
	@echo "make demo      the shipped SmolVLA on the SO-101 lift task in MuJoCo, async executor; writes demo_out/ (DEMO_ARGS=--oracle: scripted expert)"
	@echo "make test      run the test suite (sets up .venv if missing)"
	@echo "make setup     create/update .venv: torch ($(TORCH_SPEC)), ROS 2 Kilted wheels, smolvla_msgs, packages"
	@echo "make bench     run the benchmarks in bench/ and print their tables"
	@echo "make lint      ruff"
	@echo "make train-sim record demonstrations in the sim, convert, train, record interventions, fine-tune: the shipped sim policy (~2 h 40 min on 2 cores)"
	@echo "make lerobot-venv  LeRobot $(LEROBOT_VERSION) in its own venv $(LEROBOT_VENV) (LEROBOT_PYTHON=python3.12 or newer): the LeRobot column of bench/policy_latency.py"

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

# The real ROS 2 launch tooling (launch 3.7, launch_ros 0.28, `ros2 launch`) in .venv, so that the
# tests check launch/ against it (docs/bringup.md). It is not on PyPI: installed from the upstream
# sources in ROS2_SOURCES (never copied into this repository), each built from a scratch copy
# because pip builds in the source folder. composition_interfaces (imported by launch_ros) is built
# like smolvla_msgs, with the same wheel include fix injected through CMAKE_PROJECT_INCLUDE.
# osrf-pycommon and psutil are launch's two dependencies missing from the venv; never add `lark`
# (lark 1.x replaces the lark-parser 0.12 that rosidl needs; launch works with 0.12).
ROS2_SOURCES       ?= ../shared/third_party/ros2
ROS2_LAUNCH_PKGS    = launch/launch launch/launch_xml launch/launch_yaml launch_ros/launch_ros \
                      ros2cli/ros2cli ros2cli/ros2pkg ros2cli/ros2run launch_ros/ros2launch
COMPOSITION_BUILD   = build/composition_interfaces
ROS2_LAUNCH_LOG     = build/ros2-launch-pip.log

.PHONY: ros2-launch
ros2-launch: setup
	@test -d "$(ROS2_SOURCES)/launch_ros/ros2launch" || { \
	  echo "ros2-launch: no upstream sources in $(ROS2_SOURCES) (make ros2-launch ROS2_SOURCES=DIR)"; \
	  exit 2; }
	$(PIP) install -q osrf-pycommon psutil
	@mkdir -p build && tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	for p in $(ROS2_LAUNCH_PKGS); do \
	  mkdir -p "$$tmp/$$p" && cp -R "$(ROS2_SOURCES)/$$p/." "$$tmp/$$p/" && \
	  chmod -R u+w "$$tmp/$$p" && rm -rf "$$tmp/$$p/build" "$$tmp/$$p"/*.egg-info || exit 1; \
	done && cd "$$tmp" && echo "pip install (from a copy of $(ROS2_SOURCES)): $(ROS2_LAUNCH_PKGS)" && \
	$(abspath $(PY)) -m pip install -q --no-deps --no-build-isolation $(ROS2_LAUNCH_PKGS) \
	  > $(abspath $(ROS2_LAUNCH_LOG)) 2>&1 || { tail -50 $(abspath $(ROS2_LAUNCH_LOG)); exit 1; }
	AMENT_PREFIX_PATH=$(abspath $(VENV)) cmake -S $(ROS2_SOURCES)/rcl_interfaces/composition_interfaces \
	    -B $(COMPOSITION_BUILD) -G Ninja -DCMAKE_PREFIX_PATH=$(abspath $(VENV)) \
	    -DCMAKE_INSTALL_PREFIX=$(abspath $(VENV)) -DPython3_EXECUTABLE=$(abspath $(PY)) \
	    -DBUILD_TESTING=OFF \
	    -DCMAKE_PROJECT_INCLUDE=$(abspath msg/cmake/wheel_include_fix_project_include.cmake) \
	    > $(COMPOSITION_BUILD).log 2>&1 || { cat $(COMPOSITION_BUILD).log; exit 1; }
	cmake --build $(COMPOSITION_BUILD) -j2 >> $(COMPOSITION_BUILD).log 2>&1 \
	  || { tail -50 $(COMPOSITION_BUILD).log; exit 1; }
	cmake --install $(COMPOSITION_BUILD) >> $(COMPOSITION_BUILD).log 2>&1 \
	  || { tail -50 $(COMPOSITION_BUILD).log; exit 1; }
	$(PY) -c "import launch, launch_ros.actions, composition_interfaces.srv, ros2launch"
	$(VENV)/bin/ros2 launch --help > /dev/null
	@echo "ros2-launch done: $(VENV)/bin/ros2 launch (launch $$($(PY) -c \
	'from importlib.metadata import version as v; print(v("launch"))'))"

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check smolvla_ros training test bench launch setup.py

demo: setup
	$(PY) -m smolvla_ros.cli demo $(DEMO_ARGS)

bench: setup
	$(PY) -m smolvla_ros.cli bench all

# LeRobot in a venv of its own, outside the repository, for the LeRobot column of
# bench/policy_latency.py (docs/policy.md, "The LeRobot column"). lerobot 0.6.1 needs Python >= 3.12
# and pins its own torch, so it never goes into .venv; never part of `make test`.
# LEROBOT_TORCH_SPEC installs torch first, e.g. a CPU build:
# `make lerobot-venv LEROBOT_TORCH_SPEC='torch --index-url https://download.pytorch.org/whl/cpu'`.
LEROBOT_PYTHON     ?= python3.12
LEROBOT_VENV       ?= ../lerobot_venv
LEROBOT_VERSION    ?= 0.6.1
LEROBOT_TORCH_SPEC ?=
.PHONY: lerobot-venv
lerobot-venv:
	@$(LEROBOT_PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null || { \
	  echo "lerobot-venv: $(LEROBOT_PYTHON) is missing or older than Python 3.12 (make lerobot-venv LEROBOT_PYTHON=/path/to/python3.12)"; \
	  exit 2; }
	$(LEROBOT_PYTHON) -m venv $(LEROBOT_VENV)
	$(LEROBOT_VENV)/bin/python -m pip install -q --upgrade pip
	$(if $(LEROBOT_TORCH_SPEC),$(LEROBOT_VENV)/bin/python -m pip install -q $(LEROBOT_TORCH_SPEC))
	$(LEROBOT_VENV)/bin/python -m pip install -q "lerobot[smolvla]==$(LEROBOT_VERSION)"
	$(LEROBOT_VENV)/bin/python -c "import lerobot.policies.smolvla.modeling_smolvla"
	@echo "lerobot-venv done: $(VENV)/bin/python bench/policy_latency.py --lerobot-python $(LEROBOT_VENV)/bin/python"

clean:
	rm -rf build install log demo_out .pytest_cache

distclean: clean
	rm -rf $(VENV)

# The shipped simulated policy from scratch (docs/training.md, "The simulated pick"): scripted
# demonstrations recorded as rosbag2 bags -> smolvla-convert (batches of 50 bags, one dataset
# each, SIM_JOBS at a time) -> smolvla-train on all of them -> intervention recording with that
# policy (the expert takes over after its misses: sim/intervention.py) -> smolvla-convert ->
# fine-tuning on all the data (DAgger's aggregation), twice -> eval on unseen seeds.
SIM_OUT      ?= runs/sim_lift
SIM_EPISODES ?= 400
SIM_JOBS     ?= 2
SIM_STEPS    ?= 12000
SIM_DAGGER_EPISODES ?= 200
SIM_DAGGER_STEPS    ?= 4000
SIM_CONVERT = xargs -P $(SIM_JOBS) -I{} sh -c '$(abspath $(VENV))/bin/smolvla-convert $$(cat {}) \
	    --out $$(echo {} | sed s/batch_/dataset_/) --vcodec h264 --no-progress'
SIM_DATASETS = for d in $(SIM_OUT)/dataset_*; do echo --dataset $$d; done
SIM_TRAIN_ARGS = --batch-size 32 --train-expert-only false --freeze-vision-encoder false \
	    --augment --val-episodes $$(($(SIM_EPISODES) - 10))-$$(($(SIM_EPISODES) - 1)) \
	    --save-every 500 --log-every 50
# One DAgger round: policy $(1) drives, the expert takes over after its misses (seeds from $(2));
# the takeovers are converted and $(1) is fine-tuned on all the datasets into train_$(3).
define SIM_DAGGER_ROUND
	$(VENV)/bin/smolvla-ros sim-record --task lift --episodes $(SIM_DAGGER_EPISODES) \
	    --seed-start $(2) --jobs $(SIM_JOBS) --out $(SIM_OUT)/bags_$(3) --intervene $(1)
	cd $(SIM_OUT) && ls -d bags_$(3)/seed_* | sort | split -l 50 - batch_$(3)_ && \
	    ls batch_$(3)_* | $(SIM_CONVERT)
	$(VENV)/bin/smolvla-train $$($(SIM_DATASETS)) --out $(SIM_OUT)/train_$(3) --init $(1) \
	    --steps $(SIM_DAGGER_STEPS) --lr 1e-4 $(SIM_TRAIN_ARGS)
endef
.PHONY: train-sim
train-sim: setup
	$(VENV)/bin/smolvla-ros sim-record --task lift --episodes $(SIM_EPISODES) --seed-start 0 \
	    --jobs $(SIM_JOBS) --out $(SIM_OUT)/bags
	cd $(SIM_OUT) && ls -d bags/seed_* | sort | split -l 50 - batch_ && ls batch_* | $(SIM_CONVERT)
	$(VENV)/bin/smolvla-train $$($(SIM_DATASETS)) --preset sim_small --out $(SIM_OUT)/train \
	    --steps $(SIM_STEPS) --lr 3e-4 $(SIM_TRAIN_ARGS)
	$(call SIM_DAGGER_ROUND,$(SIM_OUT)/train/checkpoints/last/pretrained_model,1000,dagger)
	$(call SIM_DAGGER_ROUND,$(SIM_OUT)/train_dagger/checkpoints/last/pretrained_model,2000,dagger2)
	$(VENV)/bin/smolvla-ros eval \
	    --checkpoint $(SIM_OUT)/train_dagger2/checkpoints/last/pretrained_model \
	    --task lift --episodes 50 --seed-start 5000
