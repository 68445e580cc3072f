#!/usr/bin/env bash
# update.sh: refreshes the generated files under deploy/ after a change to
# crds/, deploy/base, deploy/argocd/*.lua or deploy/argocd/actions/:
#   deploy/base/crds/   copies of crds/ (kustomize loads nothing outside deploy/)
#   deploy/kiln.yaml    `kubectl kustomize deploy/`
#   deploy/argocd/argocd-cm-patch.yaml   the Lua scripts, embedded
# tests/deploy checks all three are current.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -f deploy/base/crds/*.yaml
cp crds/*.yaml deploy/base/crds/
kubectl kustomize deploy/ > deploy/kiln.yaml.tmp
mv deploy/kiln.yaml.tmp deploy/kiln.yaml
/usr/bin/python3 tests/deploy/argocd_cm.py . --write
