#!/bin/sh
# nixus's switcher: runs on the host, detached from the ssh session that started it, so a
# deployer that dies or a connection that drops cannot leave the host half-switched.
#
#   switcher.sh start ID NEW GOAL SWITCH_TIMEOUT SUCCESS_TIMEOUT
#       start `run` detached, then `watch` it until it has activated NEW (or ended)
#   switcher.sh run ID NEW GOAL SWITCH_TIMEOUT SUCCESS_TIMEOUT
#       the switch itself (see below)
#   switcher.sh watch ID UNTIL SECONDS
#       print the switch's states as they change, until `activated` (UNTIL=activated) or a
#       final state; after a final one, print its record: the previous system and the log
#   switcher.sh confirm ID SECONDS
#       confirm the switch (the deployer runs this over a new connection), then watch it end
#   switcher.sh heal ID
#       after the deployer lost a switch (the host restarted, say): finish or undo a commit
#       that did not end, then print what the host runs and boots
#
# Run by bash where there is one: its `read -t` waits on a FIFO that the other side pokes, so
# a change is seen at once and waiting starts no process; other shells look every $TICK s.
# Where a builtin or a parameter expansion does the job, no command is started: a switch runs
# on every host of a deploy, and each process costs the host a millisecond or two.
#
# `run` takes the host's deploy lock (recovering it when its holder is gone), installs the
# secrets of NEW, activates it, and for `switch`/`test` waits SUCCESS_TIMEOUT seconds for the
# deployer to confirm over a new ssh connection (by creating $dir/confirmed). Without
# confirmation, or when activation fails, it switches back to the previous system and its
# secrets. Every step is written to $dir/state, which `watch` reports.
#
# Committing (setting the system profile, then installing the boot entry) is two steps, and
# the host may restart between them; /run does not survive that. So the switcher writes its
# intent to $intent (persistent storage) first and removes it when both are done. Whoever takes
# the lock next (the next switch, or `heal`) finds an intent left behind and makes the profile
# and the boot entry agree with the system the host runs: it finishes the commit when the host
# runs the new system, and undoes it otherwise.
set -u
mode=$1 id=$2
base=/run/nixus
dir=$base/deploys/$id
lock=$base/lock
profile=/nix/var/nix/profiles/system
secrets=/nix/var/nixus/secrets
intent=/nix/var/nixus/commit
TICK=0.05  # seconds between looks at a file that another process changes
umask 077
shell=${BASH:-/bin/sh}

# Wait up to $TICK seconds, or until a line arrives in the FIFO $1.
pause() {
  if [ -n "${BASH_VERSION:-}" ] && [ -p "$1" ]; then
    read -r -t "$TICK" line <> "$1" || true
  else
    sleep "$TICK"
  fi
}

# Wake whoever pauses on the FIFO $1 (opening it read-write never blocks; without a reader the
# line waits in the pipe, and only makes a later look come sooner).
poke() {
  [ -p "$1" ] && printf '\n' 1<> "$1"
  return 0
}

final() {
  case "$1" in committed|rolled-back*|failed*|done*) return 0 ;; esac
  return 1
}

watch() {
  until=$1 ticks=$(($2 * 20)) last=
  while [ "$ticks" -gt 0 ]; do
    now=
    [ -e "$dir/state" ] && read -r now < "$dir/state"  # builtins: no process per look
    if [ "$now" != "$last" ]; then
      printf 'state %s\n' "$now"
      last=$now
      if final "$now"; then
        previous=
        { read -r previous < "$dir/old"; } 2>/dev/null
        printf 'old %s\nlog\n' "$previous"
        cat "$dir/activation.log" 2>/dev/null || true
        exit 0
      fi
      [ "$until" = activated ] && [ "$now" = activated ] && exit 0
    fi
    pause "$dir/changed"
    ticks=$((ticks - 1))
  done
  exit 0
}

case "$mode" in
  watch) watch "$3" "$4" ;;
  confirm)
    : > "$dir/confirmed"
    poke "$dir/confirm"
    watch final "$3" ;;
  start)
    mkdir -p "$dir"
    mkfifo "$dir/changed" "$dir/confirm"
    shift
    setsid -f "$shell" "$0" run "$@" </dev/null >/dev/null 2>&1
    watch activated $(($4 + 30)) ;;
  run|heal) ;;
  *) echo "switcher.sh: unknown mode $mode" >&2; exit 2 ;;
esac

if [ "$mode" = heal ]; then
  new= goal=heal switch_timeout=300 success_timeout=0
  # The switch's own record, if it outlived whatever stopped the deployer following it.
  [ -e "$dir/state" ] && { read -r now < "$dir/state"; printf 'switch %s\n' "$now"; }
else
  new=$3 goal=$4 switch_timeout=$5 success_timeout=$6
fi
[ -d "$dir" ] || mkdir -p "$dir"

state() {
  printf '%s\n' "$1" > "$dir/state.tmp" && mv "$dir/state.tmp" "$dir/state"
  poke "$dir/changed"
  printf '%s %s\n' "${EPOCHSECONDS:-$(date +%s)}" "$1" >> "$dir/log"  # bash 5 knows the time itself
}

# What the host runs and boots (the system profile), for the deployer.
report_systems() {
  printf 'current %s\nboot %s\n' "$(readlink -e /run/current-system)" "$(readlink -e "$profile")"
}

# The lock is a directory (mkdir is atomic); a holder that no longer runs left it stale.
while ! mkdir "$lock" 2>/dev/null; do
  holder=$(cat "$lock/pid" 2>/dev/null || true)
  if [ -n "$holder" ] && kill -0 "$holder" 2>/dev/null; then
    [ "$mode" = heal ] && { report_systems; exit 0; }
    state "failed: another deploy ($(cat "$lock/id" 2>/dev/null)) is switching this host"
    exit 1
  fi
  rm -rf "$lock"
done
echo $$ > "$lock/pid"
echo "$id" > "$lock/id"
trap 'rm -rf "$lock"' EXIT
trap '' HUP

activate() {
  timeout "$switch_timeout" "$1/bin/switch-to-configuration" "$2" >> "$dir/activation.log" 2>&1
}

# Set the system profile to $1 and install its boot entry, with the intent on disk meanwhile
# (see the top). $2: the system to go back to when this does not end. Sets $why.
commit() {
  mkdir -p "${intent%/*}"
  { printf '%s\n%s\n%s\n' "$1" "$2" "$(readlink "$profile" 2>/dev/null)" > "$intent.tmp" &&
    sync "$intent.tmp" && mv "$intent.tmp" "$intent" && sync "${intent%/*}"; } 2>/dev/null ||
    { why="cannot write $intent"; return 1; }
  if [ "$(readlink -e "$profile")" != "$1" ]; then
    nix-env -p "$profile" --set "$1" >> "$dir/activation.log" 2>&1 || { why="cannot set the system profile"; return 1; }
  fi
  activate "$1" boot || { why="switch-to-configuration boot exited $?"; return 1; }
  rm -f "$intent"
}

# A commit that did not end (its switcher is gone: the host restarted): the profile and the
# boot entry follow what the host runs. Says what it did in the activation log.
heal() {
  [ -f "$intent" ] || return 0
  { read -r to; read -r from; read -r generation; } < "$intent"
  running=$(readlink -e /run/current-system)
  if [ -n "$to" ] && [ "$running" = "$to" ]; then
    echo "nixus: finishing the commit of $to that did not end" >> "$dir/activation.log"
    commit "$to" "$from" && echo "healed finished the commit of $to" && return 0
  elif [ -n "$from" ]; then
    echo "nixus: undoing the commit of $to that did not end: the host runs $running" >> "$dir/activation.log"
    case "$generation" in
      system-*-link) [ "$(readlink -e "${profile%/*}/$generation")" = "$from" ] &&
        ln -sfn "$generation" "$profile.nixus-tmp" && mv -T "$profile.nixus-tmp" "$profile" ;;
    esac
    commit "$from" "$from" && echo "healed undid the commit of $to" && return 0
  fi
  echo "healed nothing: $why"
  return 1
}

[ "$mode" = heal ] && { heal; report_systems; exit 0; }
heal > /dev/null  # a commit an earlier switch left unfinished, before anything else

old=$(readlink -e /run/current-system 2>/dev/null || true)
[ -n "$old" ] || old=$(readlink -e "$profile" 2>/dev/null || true)
echo "$old" > "$dir/old"

# A directory that only root can change, made where missing: each component of the absolute
# path $1 is a real directory (no symbolic link), owned by root and writable by no one else.
# Root writes secrets only there: in a directory its user controls (a home), the user could swap
# a component for a link and have root write a file of the user's anywhere. Sets $why.
root_directory() {
  d= rest=${1#/}
  while [ -n "$rest" ]; do
    part=${rest%%/*}
    case $rest in */*) rest=${rest#*/} ;; *) rest= ;; esac
    [ -n "$part" ] || continue
    d="$d/$part"
    if [ -L "$d" ]; then why="$d is a symbolic link"; return 1; fi
    if [ ! -e "$d" ]; then
      mkdir -m 0755 "$d" || { why="cannot make $d"; return 1; }
      continue
    fi
    [ -d "$d" ] || { why="$d is not a directory"; return 1; }
    [ "$(stat -c %u "$d")" = 0 ] || { why="$d is not owned by root"; return 1; }
    [ $((0$(stat -c %a "$d") & 022)) -eq 0 ] || { why="$d is writable by others than root"; return 1; }
  done
}

# Install the secrets that belong to a system: each file of its secrets directory goes to its
# path with its owner and mode, written next to it and renamed into place, in a directory that
# only root controls. An owner or group that the system's activation creates does not exist
# yet: root holds the file until `own_secrets` hands it over after the activation. Sets $why.
install_secrets() {
  staged="$secrets/${1##*/}"
  [ -f "$staged/manifest" ] || return 0
  while IFS='	' read -r name path owner group mode; do
    case $path in
      /*/*) root_directory "${path%/*}" || { why="$path: $why"; return 1; } ;;
      /*) ;;
      *) why="$path is not an absolute path"; return 1 ;;
    esac
    id -u "$owner" > /dev/null 2>&1 || owner=root
    getent group "$group" > /dev/null 2>&1 || group=root
    install -o "$owner" -g "$group" -m "$mode" "$staged/files/$name" "$path.nixus-tmp" &&
      mv "$path.nixus-tmp" "$path" || { why="cannot write $path"; return 1; }
  done < "$staged/manifest"
}

# After the activation: every secret of the system belongs to its owner and group.
own_secrets() {
  staged="$secrets/${1##*/}"
  [ -f "$staged/manifest" ] || return 0
  while IFS='	' read -r name path owner group mode; do
    chown "$owner:$group" "$path" || return 1
  done < "$staged/manifest"
}

rollback() {
  state "rolling-back: $1"
  if [ -n "$old" ] && [ "$old" != "$new" ]; then
    install_secrets "$old"
    activate "$old" test || { state "failed: rollback to $old did not activate cleanly ($1)"; exit 1; }
    heal > /dev/null  # a commit that failed half-way: the profile and boot entry go back too
    own_secrets "$old" || { state "failed: rollback to $old could not give its secrets their owners ($1)"; exit 1; }
  fi
  state "rolled-back: $1"
  exit 0
}

case "$goal" in
  dry-activate)
    activate "$new" dry-activate; code=$?
    state "done: dry-activate exited $code"
    exit 0 ;;
  boot)
    commit "$new" "$old" || { state "failed: $why"; exit 1; }
    state "committed"
    exit 0 ;;
esac

state "activating"
install_secrets "$new" || rollback "cannot install the secrets: $why"
activate "$new" test
code=$?
[ "$code" -eq 0 ] || rollback "activation failed (switch-to-configuration test exited $code)"
own_secrets "$new" || rollback "cannot give the secrets their owners (does each owner and group exist?)"
state "activated"

# Wait for the deployer to prove it can still get in, over a connection opened after the switch.
ticks=$((success_timeout * 20))
while [ ! -e "$dir/confirmed" ]; do
  [ "$ticks" -gt 0 ] || rollback "no confirmation within ${success_timeout}s"
  pause "$dir/confirm"
  ticks=$((ticks - 1))
done

if [ "$goal" = switch ]; then
  commit "$new" "$old" || rollback "$why"
fi
state "committed"
