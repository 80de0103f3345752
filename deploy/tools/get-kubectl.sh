#!/usr/bin/env bash
# kubectl from Debian's kubernetes-client package (bookworm: kubectl 1.20,
# whose `kubectl kustomize` is kustomize v2.0.3), unpacked into
# .venv/kubectl/ and not installed: a kubectl of your own (/usr/bin/kubectl)
# stays as it is. tests/test_deploy_manifests.py renders the overlays with
# .venv/kubectl/usr/bin/kubectl only, on a developer's machine as in CI
# (.ci/run runs this). Debian or Ubuntu with apt; `apt-get update` (root) only
# when the package cannot be downloaded from the lists already there.
# Idempotent: does nothing once .venv/kubectl/usr/bin/kubectl exists.
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=.venv/kubectl
if [ -x "$dest/usr/bin/kubectl" ]; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 0777 "$tmp"  # apt downloads as its unprivileged user _apt
download() { (cd "$tmp" && apt-get download -q kubernetes-client); }
if ! download; then
  if [ "$(id -u)" -eq 0 ]; then apt-get update -q; else sudo apt-get update -q; fi
  download
fi
# unpacked beside it, then renamed: never a half-unpacked .venv/kubectl
mkdir -p .venv
rm -rf "$dest" "$dest.partial"
dpkg -x "$tmp"/kubernetes-client_*.deb "$dest.partial"
mv "$dest.partial" "$dest"
"$dest/usr/bin/kubectl" version --client
