#!/usr/bin/env bash
# Pushes of an app without a Dockerfile: the Node app of
# TestPushWithoutDockerfile (package.json + package-lock.json with one
# dependency from the npm registry, no Dockerfile) pushed to a fresh daemon,
# then pushed again with a code change. Prints, per round, the time from
# `git push` to the router serving the new version, for the first push
# (npm ci runs) and the second (npm ci's layer comes from the cache).
#   bench/nodockerfile.sh              3 rounds
#   ROUNDS=5 bench/nodockerfile.sh
# Needs what the test needs (root, debootstrap, Debian's mirror, the npm
# registry); the Debian base images are made on the first run and reused.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${ROUNDS:-3}"
for i in $(seq 1 "$rounds"); do
  echo "round $i/$rounds"
  go test -count=1 -timeout 20m -run '^TestPushWithoutDockerfile$/^nodeapp$' -v ./daemon/ 2>&1 |
    grep -E 'push served after|made plat-test|^(--- FAIL|FAIL|ok)'
done
