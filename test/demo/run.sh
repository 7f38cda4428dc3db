#!/usr/bin/env bash
# The demo `make demo` runs once the local cluster is up: deploy the echo app, then show the
# plugin at work. Commands are printed before they run, so the output reads like a session.
set -euo pipefail
cd "$(dirname "$0")"

show() {
  printf '\n$ %s\n' "$*"
  "$@"
}

show kubectl apply -f echo.yaml
show kubectl -n remocal-demo rollout status deployment/echo --timeout=90s
show kubectl remocal version
show kubectl remocal -n remocal-demo exec deployment/echo -- \
  sh -c 'echo "I run on $(hostname), with the pod'"'"'s GREETING=$GREETING and DATABASE_PASSWORD=$DATABASE_PASSWORD"'
echo
echo "# The local program reaches cluster Services by their short names, through the pod:"
show kubectl remocal -n remocal-demo exec deployment/echo -- getent hosts echo
show kubectl remocal -n remocal-demo exec deployment/echo -- curl -sS -m 10 http://echo/healthz
echo
echo "# A second session reuses the sidecar (warm start):"
show kubectl remocal -n remocal-demo exec deployment/echo -- sh -c 'exit 7' || echo "exit code: $?"
show kubectl -n remocal-demo get pod -l app=echo -o jsonpath='{range .items[*].spec.ephemeralContainers[*]}{.name}{"\n"}{end}'
echo
echo "The cluster stays up: export KUBECONFIG=$KUBECONFIG to use it; make cluster-down stops it."
