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
# A fresh pod each time: one that lived through a restart of the cluster keeps the sidecars of
# earlier demos, which the kubelet runs again and the API server then refuses its status
# updates for (the plugin says so, but a demo should show the plugin at work).
show kubectl -n remocal-demo rollout restart deployment/echo
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

# ask shows who answered a request to the pod: the app's JSON names the pod (hostname), the
# local server says hello.
ask() {
  printf '\n$ curl %s\n' "$*"
  curl -sS -m 5 "$@" | grep -E '"hostname"|hello from' || true
}

# incoming runs a local server (localserver/) under `exec` with flags, in the background, until
# the plugin says the pod's port 8080 is mirrored or stolen; then shows requests to the pod;
# then stops it with Ctrl-C (SIGINT), as a user would.
pod_ip=$(kubectl -n remocal-demo get pod -l app=echo -o jsonpath='{.items[0].status.podIP}')
incoming() {
  local log
  log=$(mktemp)
  printf '\n$ kubectl remocal -n remocal-demo exec deployment/echo %s -- go run ./localserver &\n' "$*"
  kubectl remocal -n remocal-demo exec deployment/echo "$@" -- go run ./localserver 2> >(tee "$log" >&2) &
  local pid=$!
  for _ in $(seq 200); do
    if grep -qE "(mirroring|stealing) the pod's" "$log"; then break; fi
    sleep 0.3
  done
  ask "http://$pod_ip:8080/orders"
  ask -H 'X-Dev: alice' "http://$pod_ip:8080/orders"
  sleep 0.5 # let the mirrored copy's log line come before the session ends
  kill -INT "$pid"
  wait "$pid" || true
  rm -f "$log"
}
echo
echo "# Mirror (the default): the pod's app still answers; the local server gets a copy and logs it."
incoming
echo
echo "# Steal, only the requests with X-Dev: alice; the others still reach the pod's app:"
incoming --steal --http-header 'X-Dev: alice'
echo
echo "# After the session the pod's app answers again, and no redirect is left:"
show curl -sS -m 5 -o /dev/null -w '%{http_code} from the pod app\n' "http://$pod_ip:8080/orders"
show kubectl remocal -n remocal-demo clean deployment/echo --list
echo
echo "The cluster stays up: export KUBECONFIG=$KUBECONFIG to use it; make cluster-down stops it."
