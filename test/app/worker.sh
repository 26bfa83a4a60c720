#!/bin/sh
# The test app's worker role: takes jobs from a file queue in $QUEUE (a directory every host
# mounts, as a real queue is shared): a job is a file in todo/, taken by an atomic rename into
# taken/ (only one worker's rename can succeed), done by another into done/. Each job taken and
# done is logged, and appended to $QUEUE/log with the release and the container. On SIGTERM it
# finishes the job in hand, then exits (the shell runs its trap once the job's sleep ends).
# A job whose text is gate:FILE holds the worker until $QUEUE/FILE exists (a job still in hand
# when SIGTERM comes, for as long as a test wants). SIGTERM is logged ("term CONTAINER") when
# the shell takes it, between two sleeps.
# WORKER_FAILS=1 (a build arg): it exits at once, a worker release that never becomes ready.
q=${QUEUE:-/queue}
version=$(cat /www/index.html 2>/dev/null || echo unknown)
me=$(hostname)
if [ "$WORKER_FAILS" = 1 ]; then
  echo "worker $version on $me: cannot start (WORKER_FAILS=1)"
  exit 3
fi
stop=0
# Log lines are written by the shell itself (no pipe to tee): a signal to the process group
# cannot cut one short.
say() {
  echo "$1"
  echo "$1" >>"$q/log"
}
trap 'stop=1; say "term $me $version"' TERM INT
mkdir -p "$q/todo" "$q/taken" "$q/done"
echo "worker $version on $me: waiting for jobs in $q/todo"
while [ "$stop" = 0 ]; do
  job=
  for f in "$q"/todo/*; do
    [ -e "$f" ] || break
    if mv "$f" "$q/taken/${f##*/}.$me" 2>/dev/null; then job=${f##*/}; break; fi
  done
  if [ -z "$job" ]; then
    sleep 0.2
    continue
  fi
  say "took $job $version $me"
  text=$(cat "$q/taken/$job.$me")
  case $text in
    gate:*) while [ ! -e "$q/${text#gate:}" ]; do sleep 0.2; done ;;
    *) sleep "${JOB_SECONDS:-1}" ;;
  esac
  mv "$q/taken/$job.$me" "$q/done/$job"
  say "done $job $version $me"
done
echo "worker $version on $me: stopped after the job in hand"
