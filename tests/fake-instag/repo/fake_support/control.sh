# SPDX-License-Identifier: MIT
# Fake InsTaG (instag-agent tests): fault injection for the shell scripts.
# Source it, then call `fake_control NAME "failure message"` once and
# `fake_step PERCENT "failure message"` at progress points.  Reads
# $FAKE_INSTAG_CONTROL/NAME: fail | fail_at N | hang | slow MS [once] |
# hold.
# shellcheck shell=bash

FAKE_CTL_FAIL_AT=
FAKE_CTL_SLOW_MS=
FAKE_CTL_FILE=
FAKE_CTL_ONCE=

fake_control() {
	local name=$1 msg=$2 mode= arg= w
	if [ -n "${FAKE_INSTAG_STATE:-}" ]; then
		mkdir -p "$FAKE_INSTAG_STATE" 2>/dev/null &&
			printf '%s\t%s\t%s\n' "$name" "$PWD" "${FAKE_CTL_ARGS:-}" \
				>>"$FAKE_INSTAG_STATE/calls.log" 2>/dev/null
	fi
	[ -n "${FAKE_INSTAG_CONTROL:-}" ] || return 0
	FAKE_CTL_FILE=$FAKE_INSTAG_CONTROL/$name
	[ -f "$FAKE_CTL_FILE" ] || return 0
	for w in $(cat "$FAKE_CTL_FILE"); do
		if [ -z "$mode" ]; then mode=$w
		elif [ "$w" = once ]; then FAKE_CTL_ONCE=1
		elif [ -z "$arg" ]; then arg=$w
		fi
	done
	case $mode in
	fail)
		[ -z "$FAKE_CTL_ONCE" ] || rm -f "$FAKE_CTL_FILE"
		printf '%s\n' "$msg" >&2
		exit 1 ;;
	hang)
		[ -z "$FAKE_CTL_ONCE" ] || rm -f "$FAKE_CTL_FILE"
		exec sleep 2147483647 ;;
	hold)
		# until the file is gone or says something else (600 s at most)
		local held=1
		for _ in $(seq 1 30000); do
			w=
			read -r w _ 2>/dev/null <"$FAKE_CTL_FILE"
			[ "$w" = hold ] || { held=0; break; }
			sleep 0.02
		done
		if [ $held = 1 ]; then
			printf 'fake-instag: %s: still held after 600 s\n' \
				"$FAKE_CTL_FILE" >&2
			exit 1
		fi ;;
	fail_at) FAKE_CTL_FAIL_AT=$arg ;;
	slow) FAKE_CTL_SLOW_MS=$arg ;;
	esac
	return 0
}

fake_step() {
	local pct=$1 msg=$2
	if [ -n "$FAKE_CTL_SLOW_MS" ]; then
		sleep "$(awk -v ms="$FAKE_CTL_SLOW_MS" 'BEGIN { printf "%.3f", ms / 1000 }')"
	fi
	if [ -n "$FAKE_CTL_FAIL_AT" ] &&
		awk -v p="$pct" -v n="$FAKE_CTL_FAIL_AT" 'BEGIN { exit !(p >= n) }'; then
		[ -z "$FAKE_CTL_ONCE" ] || rm -f "$FAKE_CTL_FILE"
		printf '%s\n' "$msg" >&2
		exit 1
	fi
	return 0
}
