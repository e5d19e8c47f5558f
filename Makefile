# Every target bootstraps .venv first (idempotent: ~1 s when nothing changed).
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
# ROS 2 traffic stays on this machine unless the user says otherwise.
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
export RMW_IMPLEMENTATION ?= rmw_fastrtps_cpp
export HOME ?= $(CURDIR)

.PHONY: all venv test colcon-check demo bench bench-geometry msgs clean distclean help

all: test

help:
	@echo "make demo   - set up everything, then run the simulated demo"
	@echo "make test   - set up everything, then run the whole test suite"
	@echo "make colcon-check - colcon build + test + test-result in build/colcon_ws (as CI)"
	@echo "make bench  - benchmarks (JSON + PNG in bench_out/)"
	@echo "make venv   - only create/update .venv (ROS 2 wheels, torch, open3d, unipixel_msgs)"

venv:
	@scripts/bootstrap.sh

msgs: venv
	scripts/build_msgs.sh $(VENV)

test: venv
	$(PY) -m pytest

colcon-check: venv
	scripts/colcon_check.sh

demo: venv
	$(VENV)/bin/unipixel-sim demo

bench: venv
	@test -f bench_out/sim_frames/dataset.json || $(VENV)/bin/unipixel-sim generate \
		--out bench_out/sim_frames --scenes 10 --seed 900000 --workers 1 --no-progress
	$(VENV)/bin/unipixel-ros bench all --out bench_out --data bench_out/sim_frames

bench-geometry: venv
	$(VENV)/bin/unipixel-ros bench geometry --json bench_out/geometry.json

clean:
	rm -rf build bench_out .pytest_cache

distclean: clean
	rm -rf $(VENV) .venv-triton
