//go:build linux

package seccomp

import (
	"fmt"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Trap is one syscall to hand to the supervisor.
type Trap struct {
	Nr uint32
	// NonZeroArg, when >= 0, traps the call only if that argument is not zero (NULL): sendto
	// without a destination address, the common case on connected sockets, then runs in the
	// kernel without a round trip.
	NonZeroArg int
	// Equal, when not empty, traps the call only if each of these arguments has its value (in
	// its low 32 bits, all an int argument has): getsockopt of SO_ERROR alone, not of every
	// option. It takes NonZeroArg -1.
	Equal []ArgValue
}

// ArgValue is the value an argument must have.
type ArgValue struct {
	Arg int
	Val uint32
}

// Offsets in struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// Filter compiles a program that notifies the supervisor of traps and allows every other
// syscall. Syscalls of another ABI than the native one (32-bit compat, x32) are allowed: their
// numbers differ, so they are not intercepted (documented).
func Filter(traps []Trap) ([]unix.SockFilter, error) {
	const (
		allow  = unix.SECCOMP_RET_ALLOW
		notify = unix.SECCOMP_RET_USER_NOTIF
	)
	var prog []bpf.Instruction
	emit := func(in ...bpf.Instruction) { prog = append(prog, in...) }

	emit(bpf.LoadAbsolute{Off: offArch, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: nativeArch, SkipTrue: 1},
		bpf.RetConstant{Val: allow},
		bpf.LoadAbsolute{Off: offNr, Size: 4})
	if x32Bit != 0 {
		emit(bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: x32Bit, SkipFalse: 1},
			bpf.RetConstant{Val: allow})
	}
	for _, t := range traps {
		if len(t.Equal) > 0 {
			// if nr == t.Nr: notify if every argument matches, else allow (no other trap is
			// for this number); either way the block returns, so its loads may clobber A.
			emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: t.Nr, SkipFalse: uint8(3*len(t.Equal) + 1)})
			for _, eq := range t.Equal {
				emit(bpf.LoadAbsolute{Off: uint32(offArgs + 8*eq.Arg), Size: 4},
					bpf.JumpIf{Cond: bpf.JumpEqual, Val: eq.Val, SkipTrue: 1},
					bpf.RetConstant{Val: allow})
			}
			emit(bpf.RetConstant{Val: notify})
			continue
		}
		if t.NonZeroArg < 0 {
			// if nr == t.Nr: notify
			emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: t.Nr, SkipFalse: 1},
				bpf.RetConstant{Val: notify})
			continue
		}
		// if nr == t.Nr: notify unless args[i] == 0 (both 32-bit halves zero). The argument
		// loads clobber A, so the number is reloaded after this block.
		lo := uint32(offArgs + 8*t.NonZeroArg)
		emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: t.Nr, SkipFalse: 7},
			bpf.LoadAbsolute{Off: lo, Size: 4},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipTrue: 1},
			bpf.RetConstant{Val: notify},
			bpf.LoadAbsolute{Off: lo + 4, Size: 4},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipTrue: 1},
			bpf.RetConstant{Val: notify},
			bpf.RetConstant{Val: allow})
	}
	emit(bpf.RetConstant{Val: allow})

	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("assemble seccomp filter: %w", err)
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out, nil
}
