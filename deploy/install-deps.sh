#!/usr/bin/env bash
# Installs the Debian packages that building, testing and benchmarking nextbasket need,
# only those that are missing. Safe to run repeatedly; needs root (or sudo) only when
# something is actually missing.
#   deploy/install-deps.sh            build + test packages (OpenMPI included: 12.5 MB download,
#                                     53 MB on disk, ~20 s, for nb-train's MPI path and its test;
#                                     clang for the fuzz harnesses; nginx, wrk, python3-jsonschema,
#                                     python3-prometheus-client for the deployment tests)
#   deploy/install-deps.sh --bench    also the benchmark tools (wrk, hyperfine, python3-torch,
#                                     python3-xgboost for bench/rk_explore.py)
set -euo pipefail

# clang and libclang-rt-14-dev (its libFuzzer and sanitizer runtimes): the fuzz harnesses
# that make test builds and runs briefly (tests/fuzz.sh, make fuzz). wrk: the load that
# tests/reload.sh swaps models under. jq and librsvg2-bin (rsvg-convert): bench/grid.sh reads the
# reports and its test renders the SVG charts.
pkgs=(build-essential pkg-config libmicrohttpd-dev libcjson-dev libsqlite3-dev
      libopenblas-dev libxgboost-dev sqlite3 curl python3 python3-numpy python3-sklearn valgrind
      libopenmpi-dev openmpi-bin clang libclang-rt-14-dev jq librsvg2-bin)
# nb-serve's production side (issue 13): nginx and wrk for deploy/replicas.sh (tests/deploy.sh),
# the JSON Schema validator of tests/openapi.sh, the Prometheus text parser of tests/metrics.sh.
pkgs+=(nginx wrk python3-jsonschema python3-prometheus-client)
if [[ "${1:-}" == "--bench" ]]; then
    pkgs+=(wrk hyperfine python3-torch python3-xgboost bc time)
fi

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1; }
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
# Only refresh the package lists when the cached ones cannot satisfy the install.
if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
