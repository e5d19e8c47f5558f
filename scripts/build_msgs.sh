#!/usr/bin/env bash
# Build unipixel_msgs with plain CMake against the ROS 2 PyPI wheels and install it into the venv
# prefix (the venv is the ament prefix: share/<pkg>, lib/*.so, site-packages/<pkg>).
# Usage: scripts/build_msgs.sh VENV_DIR
set -euo pipefail
VENV="$(cd "${1:?usage: build_msgs.sh VENV_DIR}" && pwd)"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build/unipixel_msgs"
PY="$VENV/bin/python"
mkdir -p "$BUILD"
export CMAKE_PREFIX_PATH="$VENV" AMENT_PREFIX_PATH="$VENV"
# The wheels' shared libraries (librcutils, fastcdr, ...) are needed by the generators at build time.
export LD_LIBRARY_PATH="$VENV/lib:$("$PY" -c 'import glob,sys,os; print(os.pathsep.join(glob.glob(os.path.join(sys.prefix,"lib","python%d.%d"%sys.version_info[:2],"site-packages","ros_*.libs"))))'):${LD_LIBRARY_PATH:-}"
export PATH="$VENV/bin:$PATH"
cmake -S "$ROOT/unipixel_msgs" -B "$BUILD" \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="$VENV" \
  -DCMAKE_PROJECT_INCLUDE="$ROOT/scripts/cmake/strip_foreign_python_includes.cmake" \
  -DPython3_EXECUTABLE="$PY" \
  -DPython3_FIND_VIRTUALENV=ONLY \
  -DBUILD_TESTING=OFF > "$BUILD/configure.log" 2>&1 || { tail -40 "$BUILD/configure.log"; echo "unipixel_msgs: CMake configure failed (full log: $BUILD/configure.log)" >&2; exit 1; }
cmake --build "$BUILD" -j "$(nproc)" > "$BUILD/build.log" 2>&1 || { tail -40 "$BUILD/build.log"; echo "unipixel_msgs: build failed (full log: $BUILD/build.log)" >&2; exit 1; }
cmake --install "$BUILD" > "$BUILD/install.log" 2>&1 || { tail -20 "$BUILD/install.log"; echo "unipixel_msgs: install failed" >&2; exit 1; }
echo "unipixel_msgs installed into $VENV"
