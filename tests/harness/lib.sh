# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Shared code of the test harness (tests/harness/start, stop, agent).
# Sourced, never run.  Loopback addresses only; every wait is bounded.
#
# A harness directory ($HARNESS_DIR, /tmp/ia-harness.XXXXXX) holds:
#   .ia-harness           marker: stop and agent refuse directories without it
#   harness.state         what stop and agent need (sourced by them)
#   env                   the export lines start prints (`. $HARNESS_DIR/env`)
#   agent.conf agent.log agent.pid agent.exit (exit status after it ended)
#   agent<i>.conf ... and run/agent<i>.sock for agents 2..IA_AGENTS
#   nginx-agent<i>-locations.conf  with IA_AGENTS > 1: the project's locations
#                         file passing to one agent's upstream (instag_agent_<i>)
#   pg/                   with IA_STORE=postgresql: the cluster (tests/harness/pg)
#   nginx.conf nginx.pid nginx-error.log nginx-access.log nginx.stderr
#   jwt.key (0600)  tls/{ca,server}.{pem,key}  run/agent.sock
#   state/tasks.db (SQLite only)  state/artifacts/ (every agent's
#   artifact_dir, uploads in state/artifacts/uploads)  nginx-tmp/

# Used by the scripts that source this file.
# shellcheck disable=SC2034
IA_SCOPES="pods:read pods:write instag:run tasks:read tasks:write diag:run"
# shellcheck disable=SC2034
IA_PREFIX=/agents/instag
IA_PROG=${IA_PROG:-harness}
IA_FAKE_RUNPOD_BIN=${IA_FAKE_RUNPOD_BIN:-}
IA_FAKE_PORT=${IA_FAKE_PORT:-}

# shellcheck disable=SC2034
# Two levels above this file: the source tree (tests/harness/../..).
IA_SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

ia_log() { printf '%s: %s\n' "$IA_PROG" "$*" >&2; }
ia_die() { printf '%s: error: %s\n' "$IA_PROG" "$*" >&2; exit 1; }

# Print $1 quoted for the shell when it needs quoting.
ia_shquote() {
	case $1 in
	'' | *[!A-Za-z0-9_./:=@%+,-]*)
		printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")" ;;
	*) printf '%s' "$1" ;;
	esac
}

# ia_sleep_tick: the unit of every wait loop (0.1 s).
ia_sleep_tick() { sleep 0.1; }

# Absolute path of an existing file.
ia_abspath() {
	printf '%s/%s\n' "$(cd "$(dirname "$1")" && pwd)" "$(basename "$1")"
}

# The agent binary: $INSTAG_AGENT_BIN, else $top_builddir/src/instag-agent,
# else ./src/instag-agent.  Prints its absolute path or dies.
ia_find_agent_bin() {
	local bin how
	if [ -n "${INSTAG_AGENT_BIN:-}" ]; then
		bin=$INSTAG_AGENT_BIN how="INSTAG_AGENT_BIN"
	elif [ -n "${top_builddir:-}" ]; then
		bin=$top_builddir/src/instag-agent how="top_builddir"
	else
		bin=./src/instag-agent how="the current directory"
	fi
	if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
		ia_die "agent binary '$bin' (from $how) is missing or not executable: build it first (make), or set INSTAG_AGENT_BIN or top_builddir"
	fi
	ia_abspath "$bin"
}

# nginx: $NGINX, else the one on PATH, else /usr/sbin/nginx.
ia_find_nginx() {
	local bin
	if [ -n "${NGINX:-}" ]; then
		bin=$NGINX
	else
		bin=$(command -v nginx 2>/dev/null || true)
		[ -n "$bin" ] || bin=/usr/sbin/nginx
	fi
	[ -x "$bin" ] || ia_die "nginx not found ('$bin'): install the Debian package 'nginx' or set NGINX"
	printf '%s\n' "$bin"
}

# A free TCP port on 127.0.0.1 (the kernel's choice; it may be taken again
# before we bind it, so callers retry).
ia_free_port() {
	python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# Refuse anything that does not look like a harness directory, then load its
# state.  Sets IA_DIR and the variables of harness.state.
ia_load_dir() {
	local dir=$1
	[ -n "$dir" ] || ia_die "no harness directory given"
	case $(basename -- "$dir") in
	ia-harness.*) ;;
	*) ia_die "refusing '$dir': not a harness directory (its name must be ia-harness.*)" ;;
	esac
	if [ -L "$dir" ] || [ ! -d "$dir" ]; then
		ia_die "refusing '$dir': not a directory"
	fi
	if [ ! -f "$dir/.ia-harness" ] || [ ! -O "$dir/harness.state" ]; then
		ia_die "refusing '$dir': no harness marker or state owned by $(id -un)"
	fi
	IA_DIR=$(cd "$dir" && pwd)
	# shellcheck source=/dev/null
	. "$IA_DIR/harness.state"
	[ "$IA_DIR" = "$(cd "$dir" && pwd)" ] || ia_die "refusing '$dir': state names another directory"
}

# Write harness.state from the current variables.
ia_save_state() {
	local v
	{
		for v in IA_DIR IA_AGENT_BIN IA_NGINX_BIN IA_PORT AGENT_URL \
		    AGENT_CA AGENT_CONF NGINX_ROOT_URL IA_FAKE_RUNPOD_BIN \
		    IA_FAKE_PORT IA_AGENTS IA_AGENT_PORTS IA_STORE; do
			printf '%s=%s\n' "$v" "$(ia_shquote "${!v:-}")"
		done
	} >"$IA_DIR/harness.state.tmp"
	mv -f "$IA_DIR/harness.state.tmp" "$IA_DIR/harness.state"
}

# ---- processes -------------------------------------------------------------

# Does the pid in file $1 name a live process whose command line contains $2?
# (Guards against a pid reused by an unrelated process.)
ia_pid_alive() {
	local pid cmd
	[ -s "$1" ] || return 1
	pid=$(cat "$1" 2>/dev/null) || return 1
	case $pid in '' | *[!0-9]*) return 1 ;; esac
	kill -0 "$pid" 2>/dev/null || return 1
	if [ -r "/proc/$pid/cmdline" ]; then
		cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
		case $cmd in *"$2"*) ;; *) return 1 ;; esac
	fi
	return 0
}

# Wait (at most $2 ticks of 0.1 s) for pid $1 to be gone.
ia_wait_gone() {
	local pid=$1 n=$2 i
	for ((i = 0; i < n; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		ia_sleep_tick
	done
	! kill -0 "$pid" 2>/dev/null
}

# Stop the process of pid file $1 (label $2, command line containing $3):
# SIGTERM, wait up to 10 s, then SIGKILL it and its children.  Removes the
# pid file.  Returns 0 when it ended on SIGTERM (or was not running), 1 when
# it had to be killed.
ia_stop_pidfile() {
	local file=$1 label=$2 match=$3 pid kids rc=0
	if ! ia_pid_alive "$file" "$match"; then
		rm -f "$file"
		return 0
	fi
	pid=$(cat "$file")
	ia_log "stopping $label (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	if ! ia_wait_gone "$pid" 100; then
		ia_log "$label (pid $pid) still running after 10 s: SIGKILL"
		kids=$(ps -o pid= --ppid "$pid" 2>/dev/null || true)
		# shellcheck disable=SC2086
		kill -KILL "$pid" $kids 2>/dev/null || true
		ia_wait_gone "$pid" 50 || ia_log "$label (pid $pid) survived SIGKILL"
		rc=1
	fi
	rm -f "$file"
	return $rc
}

# ---- the agent -------------------------------------------------------------
#
# With IA_AGENTS=N (tests/harness/start) there are N agents, numbered 1..N.
# Agent 1's files keep their names (agent.conf agent.log agent.pid
# agent.exit run/agent.sock); agent i > 1 has agent<i>.conf, agent<i>.log,
# agent<i>.pid, agent<i>.exit and run/agent<i>.sock.  The functions below
# take the agent's number as an optional last argument (default 1).

# Check agent number $1 (1..IA_AGENTS) and set IA_AX (its file-name
# suffix: empty for agent 1), IA_ACONF (its configuration) and IA_AURL
# (the URL that reaches it alone: AGENT_URL with one agent, else its own
# nginx server, port i of IA_AGENT_PORTS).
ia_agent_select() {
	local i=${1:-1} ports
	case $i in
	'' | *[!0-9]* | 0*) ia_die "bad agent number '$i' (1..${IA_AGENTS:-1})" ;;
	esac
	[ "$i" -le "${IA_AGENTS:-1}" ] ||
	    ia_die "no agent $i: this harness has ${IA_AGENTS:-1}"
	if [ "$i" = 1 ]; then
		IA_AX="" IA_ACONF=$AGENT_CONF
	else
		IA_AX=$i IA_ACONF=$IA_DIR/agent$i.conf
	fi
	IA_AURL=$AGENT_URL
	if [ "${IA_AGENTS:-1}" -gt 1 ]; then
		read -r -a ports <<<"${IA_AGENT_PORTS:-}"
		[ -n "${ports[$((i - 1))]:-}" ] || ia_die "no nginx port for agent $i"
		IA_AURL=https://127.0.0.1:${ports[$((i - 1))]}$IA_PREFIX
	fi
}

# Agent's label in messages: "the agent", or "agent <i>" when there are more.
ia_agent_label() {
	if [ "${IA_AGENTS:-1}" -gt 1 ]; then
		printf 'agent %s' "${1:-1}"
	else
		printf 'the agent'
	fi
}

ia_agent_running() {
	ia_agent_select "${1:-1}"
	ia_pid_alive "$IA_DIR/agent$IA_AX.pid" "$IA_ACONF"
}

# Start agent $1 in the background: stdout and stderr to agent<i>.log, pid
# in agent<i>.pid.  A small wrapper waits for it and records its exit
# status in agent<i>.exit, so `stop` can tell a clean SIGTERM exit from a
# crash.
ia_agent_spawn() {
	local n=${1:-1} i label
	label=$(ia_agent_label "$n")
	if ia_agent_running "$n"; then
		ia_die "$label is already running (pid $(cat "$IA_DIR/agent$IA_AX.pid"))"
	fi
	rm -f "$IA_DIR/agent$IA_AX.pid" "$IA_DIR/agent$IA_AX.pid.tmp" \
	    "$IA_DIR/agent$IA_AX.exit"
	ia_log "starting $IA_AGENT_BIN --config $IA_ACONF"
	# setsid: the wrapper and the agent get a session of their own, so a
	# test runner that kills its child's process group (Check does after
	# each test) does not take them along.
	# shellcheck disable=SC2016
	setsid bash -c '
		"$1" --config "$2" </dev/null >>"$3/agent$4.log" 2>&1 &
		child=$!
		printf "%s\n" "$child" >"$3/agent$4.pid.tmp"
		mv -f "$3/agent$4.pid.tmp" "$3/agent$4.pid"
		status=0
		wait "$child" || status=$?
		printf "%s\n" "$status" >"$3/agent$4.exit"
	' ia-agent-wrapper "$IA_AGENT_BIN" "$IA_ACONF" "$IA_DIR" "$IA_AX" \
	    </dev/null >/dev/null 2>&1 &
	for ((i = 0; i < 50; i++)); do
		[ -s "$IA_DIR/agent$IA_AX.pid" ] && return 0
		ia_sleep_tick
	done
	ia_die "the pid file of $label did not appear"
}

# Wait (at most 100 x 0.1 s) until GET <its URL>/healthz answers 200
# through nginx (agent $1's own server when there are several).  Fails
# early when the agent has exited.
ia_wait_healthy() {
	local n=${1:-1} i code label
	label=$(ia_agent_label "$n")
	ia_agent_select "$n"
	for ((i = 0; i < 100; i++)); do
		code=$(curl -q -s -o /dev/null -w '%{http_code}' --max-time 2 \
		    --noproxy '*' --cacert "$AGENT_CA" "$IA_AURL/healthz" || true)
		[ "$code" = 200 ] && return 0
		if ! ia_agent_running "$n"; then
			ia_log "$label exited during start-up (status $(cat "$IA_DIR/agent$IA_AX.exit" 2>/dev/null || echo unknown))"
			return 1
		fi
		ia_sleep_tick
	done
	ia_log "no 200 from $IA_AURL/healthz after 100 tries (last status: $code)"
	return 1
}

# Stop agent $1 with SIGTERM (SIGKILL after 10 s).  Returns 0 when it
# exited by itself with status 0, or was not running.
ia_agent_stop() {
	local n=${1:-1} pid status i label
	label=$(ia_agent_label "$n")
	if ! ia_agent_running "$n"; then
		rm -f "$IA_DIR/agent$IA_AX.pid"
		ia_log "$label is not running"
		return 0
	fi
	pid=$(cat "$IA_DIR/agent$IA_AX.pid")
	if ! ia_stop_pidfile "$IA_DIR/agent$IA_AX.pid" "${label#the }" "$IA_ACONF"; then
		return 1
	fi
	# The wrapper writes agent<i>.exit right after the agent ends.
	for ((i = 0; i < 20; i++)); do
		[ -s "$IA_DIR/agent$IA_AX.exit" ] && break
		ia_sleep_tick
	done
	status=$(cat "$IA_DIR/agent$IA_AX.exit" 2>/dev/null || echo unknown)
	if [ "$status" != 0 ]; then
		ia_log "$label (pid $pid) exited with status $status after SIGTERM"
		return 1
	fi
	ia_log "$label (pid $pid) exited cleanly"
	return 0
}

# Stop every agent; 1 when any of them did not exit cleanly.
ia_agents_stop_all() {
	local i rc=0
	for ((i = 1; i <= ${IA_AGENTS:-1}; i++)); do
		ia_agent_stop "$i" || rc=1
	done
	return $rc
}

# SIGKILL agent $1 (crash tests) and wait until it is gone.
ia_agent_kill() {
	local n=${1:-1} pid label
	label=$(ia_agent_label "$n")
	if ! ia_agent_running "$n"; then
		rm -f "$IA_DIR/agent$IA_AX.pid"
		ia_log "$label is not running"
		return 0
	fi
	pid=$(cat "$IA_DIR/agent$IA_AX.pid")
	ia_log "killing $label (pid $pid) with SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
	ia_wait_gone "$pid" 50 || ia_die "$label (pid $pid) survived SIGKILL"
	rm -f "$IA_DIR/agent$IA_AX.pid"
}

# ---- nginx -----------------------------------------------------------------

# Run nginx on this harness's configuration, with extra arguments.
ia_nginx() {
	"$IA_NGINX_BIN" -p "$IA_DIR/" -e "$IA_DIR/nginx-error.log" \
	    -c "$IA_DIR/nginx.conf" "$@"
}

ia_nginx_stop() {
	ia_stop_pidfile "$IA_DIR/nginx.pid" nginx "$IA_DIR/nginx.conf"
}

# Print the tail of the logs to stderr (after a failure).
ia_dump_logs() {
	local f n
	local logs=(agent.log) i
	for ((i = 2; i <= ${IA_AGENTS:-1}; i++)); do
		logs+=("agent$i.log")
	done
	for f in "${logs[@]}" nginx.stderr nginx-error.log fake-runpod.log \
	    pod/sshd.log pg/postgres.log; do
		[ -s "$IA_DIR/$f" ] || continue
		n=40
		case $f in agent*.log) n=200 ;; esac
		printf '%s: ---- %s (last %s lines) ----\n' "$IA_PROG" "$IA_DIR/$f" "$n" >&2
		tail -n "$n" "$IA_DIR/$f" >&2
	done
}

# ---- the RunPod stand-in and the pod -----------------------------------------

# The stand-in binary: $IA_FAKE_RUNPOD_BIN, else under $top_builddir, else
# under the current directory.  Prints its absolute path or dies.
ia_find_fake_runpod_bin() {
	local bin
	if [ -n "${IA_FAKE_RUNPOD_BIN:-}" ]; then
		bin=$IA_FAKE_RUNPOD_BIN
	elif [ -n "${top_builddir:-}" ]; then
		bin=$top_builddir/tests/fake-runpod/fake-runpod
	else
		bin=./tests/fake-runpod/fake-runpod
	fi
	if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
		ia_die "the RunPod stand-in '$bin' is missing: build it first (make check, or make tests/fake-runpod/fake-runpod), or set IA_FAKE_RUNPOD_BIN"
	fi
	ia_abspath "$bin"
}

# Start the stand-in on a free loopback port (it picks one and prints
# PORT=n), its pods' ssh.direct pointing at 127.0.0.1:$1, state delay $2 ms,
# its network volumes in directories under $3 (linked at a pod's mount path
# while the pod runs; see tests/fake-runpod/fake_volumes.c).
# Sets IA_FAKE_PORT.  Own session, like the agent.
ia_fake_runpod_spawn() {
	local i
	rm -f "$IA_DIR/fake-runpod.out" "$IA_DIR/fake-runpod.pid"
	setsid "$IA_FAKE_RUNPOD_BIN" --port 0 \
	    --api-key-file "$IA_DIR/runpod.key" --ssh-host 127.0.0.1 \
	    --ssh-port "$1" --state-delay-ms "$2" --volume-dir "$3" \
	    --log "$IA_DIR/fake-runpod.log" </dev/null \
	    >"$IA_DIR/fake-runpod.out" 2>>"$IA_DIR/fake-runpod.log" &
	printf '%s\n' "$!" >"$IA_DIR/fake-runpod.pid"
	for ((i = 0; i < 100; i++)); do
		IA_FAKE_PORT=$(sed -n 's/^PORT=\([0-9][0-9]*\)$/\1/p' \
		    "$IA_DIR/fake-runpod.out" 2>/dev/null || true)
		[ -n "$IA_FAKE_PORT" ] && return 0
		kill -0 "$(cat "$IA_DIR/fake-runpod.pid")" 2>/dev/null || break
		ia_sleep_tick
	done
	cat "$IA_DIR/fake-runpod.log" >&2 2>/dev/null || true
	ia_die "the RunPod stand-in did not start"
}

ia_fake_runpod_stop() {
	[ -f "$IA_DIR/fake-runpod.pid" ] || return 0
	ia_stop_pidfile "$IA_DIR/fake-runpod.pid" fake-runpod fake-runpod
}

ia_pod_stop() {
	[ -d "$IA_DIR/pod" ] || return 0
	"$IA_SRCDIR/tests/harness/pod" stop "$IA_DIR/pod" >&2
}

# ---- PostgreSQL (IA_STORE=postgresql) ------------------------------------------

# Stop the cluster of tests/harness/pg in $IA_DIR/pg and remove it.
ia_pg_stop() {
	[ -f "$IA_DIR/pg/.ia-pg" ] || return 0
	"$IA_SRCDIR/tests/harness/pg" stop "$IA_DIR/pg" >&2
}
