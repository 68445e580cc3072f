#!/usr/bin/env bash
# demo.sh: the README's main-job command. Installs what kiln needs, builds it,
# then lints the web-app example and renders its instances into the manifests
# kiln would apply, printed on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build
kiln=build/bin/kiln

echo "== kiln lint examples/web-app/rgd.yaml"
"$kiln" lint examples/web-app/rgd.yaml
echo
echo "== kiln graph examples/web-app/rgd.yaml"
"$kiln" graph examples/web-app/rgd.yaml
echo
echo "== kiln render -f examples/web-app/rgd.yaml -f examples/web-app/instance.yaml"
"$kiln" render -f examples/web-app/rgd.yaml -f examples/web-app/instance.yaml
