package wire

import "syscall"

// On Linux the wire's errno numbers are the local ones.

func errnoToWire(e syscall.Errno) uint32 { return uint32(e) }

func errnoFromWire(n uint32) syscall.Errno { return syscall.Errno(n) }
