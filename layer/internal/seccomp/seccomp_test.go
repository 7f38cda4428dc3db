//go:build linux

package seccomp

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

func TestAtLeast(t *testing.T) {
	for release, want := range map[string]bool{
		"6.18.44-fc-v769": true,
		"5.9.0":           true,
		"5.10.0-28-amd64": true,
		"5.8.18":          false,
		"4.19.0-26-amd64": false,
		"garbage":         true,
	} {
		if got := atLeast(release, 5, 9); got != want {
			t.Errorf("atLeast(%q, 5, 9) = %v, want %v", release, got, want)
		}
	}
}

func TestFilterAssembles(t *testing.T) {
	prog, err := Filter([]Trap{{Nr: 42, NonZeroArg: -1}, {Nr: 44, NonZeroArg: 4}})
	if err != nil {
		t.Fatal(err)
	}
	if len(prog) < 10 {
		t.Fatalf("program of %d instructions", len(prog))
	}
}

// The filter, run in a BPF machine on seccomp_data: a trap with argument values notifies only
// for those values, and other syscalls are allowed.
func TestFilterArgumentValues(t *testing.T) {
	prog, err := Filter([]Trap{{Nr: 42, NonZeroArg: -1}, {Nr: 55, NonZeroArg: -1, Equal: []ArgValue{{Arg: 1, Val: 1}, {Arg: 2, Val: 4}}}, {Nr: 44, NonZeroArg: 4}})
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]bpf.RawInstruction, len(prog))
	for i, in := range prog {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("disassemble")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		nr   uint32
		args [6]uint64
		want uint32
	}{
		{nr: 42, want: unix.SECCOMP_RET_USER_NOTIF},
		{nr: 55, args: [6]uint64{3, 1, 4}, want: unix.SECCOMP_RET_USER_NOTIF},
		{nr: 55, args: [6]uint64{3, 1 | 7<<32, 4}, want: unix.SECCOMP_RET_USER_NOTIF}, // an int's high half is not the kernel's
		{nr: 55, args: [6]uint64{3, 1, 3}, want: unix.SECCOMP_RET_ALLOW},
		{nr: 55, args: [6]uint64{3, 6, 4}, want: unix.SECCOMP_RET_ALLOW},
		{nr: 44, args: [6]uint64{0, 0, 0, 0, 1}, want: unix.SECCOMP_RET_USER_NOTIF},
		{nr: 44, want: unix.SECCOMP_RET_ALLOW},
		{nr: 7, want: unix.SECCOMP_RET_ALLOW},
	} {
		// The BPF machine loads big-endian words; seccomp_data is in native (little) order, so
		// each 32-bit field is written big-endian here to read back as the kernel would.
		data := make([]byte, 64)
		binary.BigEndian.PutUint32(data[offNr:], tc.nr)
		binary.BigEndian.PutUint32(data[offArch:], nativeArch)
		for i, a := range tc.args {
			binary.BigEndian.PutUint32(data[offArgs+8*i:], uint32(a))
			binary.BigEndian.PutUint32(data[offArgs+8*i+4:], uint32(a>>32))
		}
		got, err := vm.Run(data)
		if err != nil {
			t.Fatal(err)
		}
		if uint32(got) != tc.want {
			t.Errorf("nr %d args %v: %#x, want %#x", tc.nr, tc.args, got, tc.want)
		}
	}
}
