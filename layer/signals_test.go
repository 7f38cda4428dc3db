//go:build linux

package layer

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// statusText is a /proc/<tid>/status with the fields that matter replaced.
func statusText(tid, tgid, threads, sigPnd, shdPnd, sigBlk, sigIgn string) string {
	return strings.NewReplacer("TID", tid, "TGID", tgid, "THREADS", threads, "SIGPND", sigPnd, "SHDPND", shdPnd, "SIGBLK", sigBlk, "SIGIGN", sigIgn).Replace(`Name:	python3
Umask:	0022
State:	S (sleeping)
Tgid:	TGID
Ngid:	0
Pid:	TID
PPid:	4519
TracerPid:	0
Uid:	0	0	0	0
Gid:	0	0	0	0
FDSize:	64
NSpid:	TID
VmRSS:	    9856 kB
Threads:	THREADS
SigQ:	1/96367
SigPnd:	SIGPND
ShdPnd:	SHDPND
SigBlk:	SIGBLK
SigIgn:	SIGIGN
SigCgt:	0000000180000002
CapInh:	0000000000000000
Seccomp:	2
Seccomp_filters:	1
voluntary_ctxt_switches:	3
`)
}

const (
	none   = "0000000000000000"
	sigint = "0000000000000002" // bit 1: signal 2
	sigurg = "0000000000400000" // bit 22: signal 23
)

func TestInterruption(t *testing.T) {
	for _, tc := range []struct {
		name                           string
		tid, tgid, threads             string
		sigPnd, shdPnd, sigBlk, sigIgn string
		timed                          bool
		want                           unix.Errno
	}{
		{name: "nothing pending", tid: "10", tgid: "10", threads: "1", sigPnd: none, shdPnd: none, sigBlk: none, sigIgn: none, want: 0},
		{name: "Ctrl-C to a one-thread process", tid: "10", tgid: "10", threads: "1", sigPnd: none, shdPnd: sigint, sigBlk: none, sigIgn: none, want: errRestartSys},
		{name: "sent to the thread", tid: "11", tgid: "10", threads: "4", sigPnd: sigint, shdPnd: none, sigBlk: none, sigIgn: none, want: errRestartSys},
		{name: "to the process, waiting in its main thread", tid: "10", tgid: "10", threads: "4", sigPnd: none, shdPnd: sigint, sigBlk: none, sigIgn: none, want: errRestartSys},
		{name: "to the process, waiting in another thread", tid: "11", tgid: "10", threads: "4", sigPnd: none, shdPnd: sigint, sigBlk: none, sigIgn: none, want: unix.EINTR},
		{name: "timed wait", tid: "10", tgid: "10", threads: "1", sigPnd: sigint, shdPnd: none, sigBlk: none, sigIgn: none, timed: true, want: unix.EINTR},
		{name: "blocked", tid: "10", tgid: "10", threads: "1", sigPnd: sigint, shdPnd: sigint, sigBlk: sigint, sigIgn: none, want: 0},
		{name: "ignored", tid: "10", tgid: "10", threads: "1", sigPnd: none, shdPnd: sigint, sigBlk: none, sigIgn: sigint, want: 0},
		{name: "another blocked, one not", tid: "10", tgid: "10", threads: "1", sigPnd: "0000000000400002", shdPnd: none, sigBlk: sigurg, sigIgn: none, want: errRestartSys},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sigs, err := parseThreadSignals(statusText(tc.tid, tc.tgid, tc.threads, tc.sigPnd, tc.shdPnd, tc.sigBlk, tc.sigIgn))
			if err != nil {
				t.Fatal(err)
			}
			if got := sigs.interruption(tc.timed); got != tc.want {
				t.Fatalf("interruption(%v) of %+v = %v, want %v", tc.timed, sigs, got, tc.want)
			}
		})
	}
}

func TestParseThreadSignals(t *testing.T) {
	got, err := parseThreadSignals(statusText("11", "10", "3", "0000000000000002", "0000000000004000", "fffffffe7ffbfeff", "0000000001001000"))
	if err != nil {
		t.Fatal(err)
	}
	want := threadSignals{pending: 2, shared: 0x4000, blocked: 0xfffffffe7ffbfeff, ignored: 0x1001000, tid: 11, tgid: 10, threads: 3}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for name, text := range map[string]string{
		"empty":           "",
		"no SigBlk":       strings.Replace(statusText("1", "1", "1", none, none, none, none), "SigBlk:", "Other:", 1),
		"not hexadecimal": statusText("1", "1", "1", "zz", none, none, none),
		"bad Threads":     statusText("1", "1", "many", none, none, none, none),
	} {
		if _, err := parseThreadSignals(text); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

// The live file parses: the fields are where the parser looks.
func TestReadThreadSignalsOfThisThread(t *testing.T) {
	got, err := readThreadSignals(unix.Gettid())
	if err != nil {
		t.Fatal(err)
	}
	if got.tgid != unix.Getpid() || got.threads < 1 {
		t.Fatalf("got %+v", got)
	}
}
