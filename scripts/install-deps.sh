#!/usr/bin/env bash
# Installs aellm's build and test dependencies from Debian 12 packages (as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    build-essential cmake pkg-config \
    libopenblas-openmp-dev libcmocka-dev libcjson-dev libsqlite3-dev sqlite3 libssl-dev libxgboost-dev \
    libcairo2-dev chromium python3 clang libomp-dev libopenmpi-dev openmpi-bin >/dev/null
echo "aellm dependencies installed"
