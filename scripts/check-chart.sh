#!/usr/bin/env bash
# Render and validate the Kubernetes deployment offline (issue 30), from a fresh clone:
#   1. `kubectl kustomize` renders deploy/kustomize/base and each overlay
#      (cpu-trial, gpu-spot, external-managed) into build/chart-tools/rendered/;
#   2. kubernetes-validate checks every rendered object against the Kubernetes schemas
#      (strict: unknown fields are errors); the KEDA and Prometheus-operator CRDs it has no
#      schema for are checked by tests/unit/test_deploy_manifests.py instead;
#   3. checkov scans them; every finding fails the run, except the checks skipped below (each
#      with its reason) and those skipped on a resource by a `checkov.io/skipN` annotation
#      (with its reason there).
# The tools go into a venv of their own (build/chart-tools/.venv), never the project's.
#
# Why Kustomize and not Helm: the Helm binary is not installable from the registries this
# project may use (PyPI, Debian, npm): Debian 12 ships Go 1.19 (bookworm-backports 1.23) and
# no helm package, Helm's sources come only through the Go module proxy, and no PyPI or npm
# package ships the binary. `kubectl kustomize` is here, and Kustomize is built into kubectl.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS=build/chart-tools
VENV="$TOOLS/.venv"
REQUIREMENTS=("kubernetes-validate==1.37.0" "checkov==3.3.30")
KUBERNETES_VERSION=1.30.0  # the oldest minor version the manifests must stay valid for
# checkov checks skipped for every resource, and why:
SKIPS=(
  # no namespace in the manifests on purpose: `kubectl apply -n NAMESPACE -k ...` picks it
  CKV_K8S_21
  # images are pinned by release tag in each overlay's `images:`; a release pins its digest
  # there (`digest:`), which a template repository cannot know in advance
  CKV_K8S_43
  # IfNotPresent with immutable release tags; Always would make every restart a registry pull
  CKV_K8S_15
  # tass reads its settings from the environment (pydantic-settings); the Secret is injected
  # with envFrom, never written into the manifests
  CKV_K8S_35
)

command -v kubectl >/dev/null || { echo "check-chart: needs kubectl (for kubectl kustomize)" >&2; exit 1; }
if [ ! -x "$VENV/bin/checkov" ] || [ ! -x "$VENV/bin/kubernetes-validate" ]; then
  echo "check-chart: installing ${REQUIREMENTS[*]} into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${REQUIREMENTS[@]}"
fi

RENDERED="$TOOLS/rendered"
rm -rf "$RENDERED"
mkdir -p "$RENDERED"
for dir in deploy/kustomize/base deploy/kustomize/overlays/*/; do
  name=$(basename "$dir")
  kubectl kustomize "$dir" > "$RENDERED/$name.yaml"
  echo "check-chart: rendered $dir ($(grep -c '^kind:' "$RENDERED/$name.yaml") objects)"
done

"$VENV/bin/kubernetes-validate" --kubernetes-version "$KUBERNETES_VERSION" --strict --quiet \
  "$RENDERED"/*.yaml
echo "check-chart: every object is valid for Kubernetes $KUBERNETES_VERSION"

skip=$(IFS=,; echo "${SKIPS[*]}")
"$VENV/bin/checkov" --directory "$RENDERED" --framework kubernetes --compact --quiet --skip-download \
  --skip-check "$skip"
echo "check-chart: checkov found nothing beyond the explained skips"
