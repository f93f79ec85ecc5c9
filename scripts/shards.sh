# shellcheck shell=bash
# shards.sh: run one Go test binary's tests in several processes side by side.
# Sourced by test.sh; defines plat_test_shards.

# plat_test_shards BIN SHARDS LABEL runs the tests BIN -test.list names in
# SHARDS processes of BIN, from the current directory, each a share of them
# (-test.run). It prints "ok" with a shard's last line, or a failed shard's
# whole output and "FAIL" with its exit status, and returns 1 if any shard
# failed. Each shard's status comes from wait on its own process: under
# set -e a subshell ends at the first failing command, so a status it was
# to write down itself after the tests would be missing just when they fail.
plat_test_shards() {
  local bin="$1" shards="$2" label="$3" dir i j re status rc=0
  local -a names pids=()
  dir="$(mktemp -d)"
  mapfile -t names < <("$bin" -test.list '.*' | grep '^Test')
  if [ ${#names[@]} -eq 0 ]; then
    echo "FAIL	$label: $bin lists no tests"
    rm -rf "$dir"
    return 1
  fi
  for ((i = 0; i < shards; i++)); do
    re=""
    for ((j = i; j < ${#names[@]}; j += shards)); do re+="${re:+|}${names[j]}"; done
    # In a subshell: bash starts a plain background command with SIGINT
    # ignored, and tests that interrupt a child (a git push's Ctrl-C)
    # need it delivered.
    ("$bin" -test.count=1 -test.timeout 30m -test.run "^($re)\$") >"$dir/shard.$i" 2>&1 &
    pids+=($!)
  done
  for ((i = 0; i < shards; i++)); do
    status=0
    wait "${pids[i]}" || status=$?
    if [ "$status" = 0 ]; then
      echo "ok  	$label (shard $((i + 1))/$shards)	$(tail -1 "$dir/shard.$i")"
    else
      cat "$dir/shard.$i"
      echo "FAIL	$label (shard $((i + 1))/$shards, exit status $status)"
      rc=1
    fi
  done
  rm -rf "$dir"
  return $rc
}
