#!/usr/bin/env bash
# The ROS 2 workspace flow, as a user of the three packages runs it: colcon build, colcon test and
# colcon test-result in a scratch workspace, with colcon from PyPI against the venv's ROS 2 wheels.
# Fails when a step fails, when any test fails or errors, and when a Python package ran no tests
# (colcon silently falls back to unittest and finds 0 tests when it cannot see pytest).
#
#   scripts/colcon_check.sh                  # everything (what CI runs)
#   PYTEST_ARGS="-m 'not ros'" scripts/colcon_check.sh   # extra pytest arguments for colcon test
#
# Environment: VENV (default .venv, made by scripts/bootstrap.sh), COLCON_WS (default
# build/colcon_ws, deleted and recreated), PYTEST_ARGS (default none: the whole suite).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$(cd "${VENV:-$ROOT/.venv}" && pwd)"
WS="${COLCON_WS:-$ROOT/build/colcon_ws}"
PY="$VENV/bin/python"
PACKAGES=(unipixel_msgs unipixel_ros unipixel_sim)
PYTHON_PACKAGES=(unipixel_ros unipixel_sim)
log() { printf '[colcon_check] %s\n' "$*" >&2; }

# ---- colcon, from PyPI into the venv (colcon runs setup.py and pytest with its own interpreter,
# so it has to live next to the ROS 2 wheels) ----------------------------------------------------
if ! "$PY" -c 'import colcon_core, colcon_ros, colcon_test_result' 2>/dev/null; then
  log "installing colcon into $VENV"
  "$PY" -m pip install --disable-pip-version-check -q -r "$ROOT/requirements/colcon.txt"
fi
log "colcon-core $("$PY" -c 'import colcon_core; print(colcon_core.__version__)')"

# ---- scratch workspace: src/ links to the packages in this repository ---------------------------
rm -rf "$WS"
mkdir -p "$WS/src"
for p in "${PACKAGES[@]}"; do ln -s "$ROOT/$p" "$WS/src/$p"; done
cd "$WS"

# The ROS 2 wheels are the underlay (as /opt/ros/<distro> is in a ROS install).
export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH"
export LD_LIBRARY_PATH="$VENV/lib:$("$PY" -c 'import glob,sys,os; print(os.pathsep.join(glob.glob(os.path.join(sys.prefix,"lib","python%d.%d"%sys.version_info[:2],"site-packages","ros_*.libs"))))'):${LD_LIBRARY_PATH:-}"
export HOME="${HOME:-$WS}" ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
# -DCMAKE_PROJECT_INCLUDE: the wheels' exported rosidl targets carry include dirs of the machine
# that built them; see scripts/cmake/strip_foreign_python_includes.cmake.
CMAKE_ARGS=(-DCMAKE_PROJECT_INCLUDE="$ROOT/scripts/cmake/strip_foreign_python_includes.cmake"
            -DPython3_EXECUTABLE="$PY" -DPython3_FIND_VIRTUALENV=ONLY)

start=$(date +%s)
log "colcon build (${PACKAGES[*]})"
if ! nice -n 10 colcon build --cmake-args "${CMAKE_ARGS[@]}"; then
  log "ERROR: colcon build failed (logs: $WS/log/latest_build)"; exit 1
fi
built=$(date +%s)
log "colcon build: $((built - start)) s"

log "colcon test${PYTEST_ARGS:+ (pytest args: $PYTEST_ARGS)}"
test_args=()
if [[ -n "${PYTEST_ARGS:-}" ]]; then eval "pytest_args=($PYTEST_ARGS)"; test_args=(--pytest-args "${pytest_args[@]}"); fi
test_rc=0
nice -n 10 colcon test --return-code-on-test-failure "${test_args[@]}" || test_rc=$?
tested=$(date +%s)
log "colcon test: $((tested - built)) s (exit code $test_rc)"

# ---- results: overall, then per Python package (each must have run tests) --------------------
status=0
colcon test-result --verbose || status=1
for p in "${PYTHON_PACKAGES[@]}"; do
  line=$(colcon test-result --test-result-base "build/$p" 2>/dev/null | grep '^Summary:' || true)
  log "$p: ${line:-Summary: no test results}"
  tests=$(sed -n 's/^Summary: \([0-9]*\) tests\{0,1\},.*/\1/p' <<<"$line")
  if [[ -z "$tests" || "$tests" -eq 0 ]]; then
    log "ERROR: $p ran no tests (is pytest in extras_require['test']?)"; status=1
  fi
done
for p in "${PYTHON_PACKAGES[@]}"; do  # pytest's own last line, for the log
  out="$WS/log/latest_test/$p/stdout_stderr.log"
  [[ -f "$out" ]] && log "$p pytest: $(grep -E '=+ .*(passed|failed|error|no tests ran|deselected).* =+$' "$out" | tail -1)"
done
if ((test_rc != 0 || status != 0)); then
  log "FAILED (colcon test exit code $test_rc; logs: $WS/log/latest_test)"; exit 1
fi
log "OK: build $((built - start)) s, test $((tested - built)) s"
