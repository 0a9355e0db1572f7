#!/bin/sh
# iowrap.sh OUTFILE COMMAND [ARGS...]
# Runs COMMAND, then copies /proc/<this shell>/io to OUTFILE and exits with COMMAND's status.
# The kernel adds a reaped child's I/O counters (its own and those of the children it reaped)
# to its parent's, so after the command has been waited for, this shell's counters hold the
# I/O of the command and all its descendants (bench/seed.js subtracts this shell's own reads).
out=$1
shift
"$@"
rc=$?
cat /proc/$$/io > "$out"
exit $rc
