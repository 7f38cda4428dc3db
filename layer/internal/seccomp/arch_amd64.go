//go:build linux

package seccomp

import "golang.org/x/sys/unix"

const (
	nativeArch = unix.AUDIT_ARCH_X86_64
	// x32Bit marks x32 ABI syscall numbers on x86-64.
	x32Bit = 0x40000000
)
