#!/usr/bin/env bash
# phase.sh NAME CMD...: run one phase of `make test` and print how long it took, pass or fail.
name=$1; shift
t0=$(date +%s)
"$@"
rc=$?
printf '== phase %-16s %5ss  %s\n' "$name" "$(( $(date +%s) - t0 ))" "$([ "$rc" -eq 0 ] && echo ok || echo "FAILED ($rc)")"
exit "$rc"
