#!/bin/sh
# A fake `drbdsetup` for the supervisor tests. Behaviour per run is chosen by
# files in $FAKE_DIR (written by the test):
#   now.txt          printed for `events2 --now` (each call appends to dumps)
#   run-N.txt        printed by the Nth streaming run (else run.txt)
#   run-N.delay      seconds the Nth run sleeps before printing (a slow start)
#   run-N.exit       exit code of the Nth run after printing; without it the
#                    run answers polls (`n` on stdin) until stdin closes
# Every streaming run appends its pid to $FAKE_DIR/pids, every poll a line to polls.
D="$FAKE_DIR"
case "$*" in
*--now*)
    echo dump >> "$D/dumps"
    cat "$D/now.txt"
    exit 0
    ;;
esac
echo $$ >> "$D/pids"
n=$(cat "$D/runs" 2>/dev/null || echo 0)
n=$((n + 1))
echo $n > "$D/runs"
if [ -f "$D/run-$n.delay" ]; then sleep "$(cat "$D/run-$n.delay")"; fi
if [ -f "$D/run-$n.txt" ]; then cat "$D/run-$n.txt"; elif [ -f "$D/run.txt" ]; then cat "$D/run.txt"; fi
if [ -f "$D/run-$n.exit" ]; then
    echo "fake events2 run $n failing" >&2
    exit "$(cat "$D/run-$n.exit")"
fi
while read -r line; do
    echo "$line" >> "$D/polls"
done
exit 0
