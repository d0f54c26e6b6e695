#!/usr/bin/env bash
# serve_port.sh LOG PID [TENTHS] -- the port a starting nb-serve (pid PID, stderr in LOG,
# started with --port 0) listens on: waits for its "listening on 127.0.0.1:PORT" line and
# prints PORT. Exits 1 with nothing printed when the process ends first or TENTHS tenths of a
# second (default 600) pass. One copy of the start-up wait for the tests and the benchmarks.
log=$1 pid=$2 tries=${3:-600}
for _ in $(seq "$tries"); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
    [[ -n $port ]] && { echo "$port"; exit 0; }
    kill -0 "$pid" 2>/dev/null || exit 1
    sleep 0.1
done
exit 1
