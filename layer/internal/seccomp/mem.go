//go:build linux

package seccomp

import (
	"bytes"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ReadMem copies len(buf) bytes at addr of process pid (a thread id will do) into buf.
func ReadMem(pid int, addr uint64, buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	local := []unix.Iovec{{Base: &buf[0], Len: uint64(len(buf))}}
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(buf)}}
	n, err := unix.ProcessVMReadv(pid, local, remote, 0)
	if err != nil {
		return fmt.Errorf("read memory of %d: %w", pid, err)
	}
	if n != len(buf) {
		return fmt.Errorf("read memory of %d: short read %d of %d", pid, n, len(buf))
	}
	return nil
}

// WriteMem copies buf to addr of process pid.
func WriteMem(pid int, addr uint64, buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	local := []unix.Iovec{{Base: &buf[0], Len: uint64(len(buf))}}
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(buf)}}
	n, err := unix.ProcessVMWritev(pid, local, remote, 0)
	if err != nil {
		return fmt.Errorf("write memory of %d: %w", pid, err)
	}
	if n != len(buf) {
		return fmt.Errorf("write memory of %d: short write %d of %d", pid, n, len(buf))
	}
	return nil
}

// ReadUint32 reads a native-endian uint32 (a socklen_t) at addr.
func ReadUint32(pid int, addr uint64) (uint32, error) {
	var v uint32
	err := ReadMem(pid, addr, unsafe.Slice((*byte)(unsafe.Pointer(&v)), 4))
	return v, err
}

// WriteUint32 writes a native-endian uint32 at addr.
func WriteUint32(pid int, addr uint64, v uint32) error {
	return WriteMem(pid, addr, unsafe.Slice((*byte)(unsafe.Pointer(&v)), 4))
}

// ReadString reads a NUL-terminated string of at most max bytes at addr. It reads page by page,
// since a string near the end of a mapping cannot be read past it.
func ReadString(pid int, addr uint64, max int) (string, error) {
	page := uint64(os.Getpagesize())
	var out []byte
	for len(out) < max {
		chunk := int(page - addr%page)
		if chunk > max-len(out) {
			chunk = max - len(out)
		}
		buf := make([]byte, chunk)
		if err := ReadMem(pid, addr, buf); err != nil {
			return "", err
		}
		if i := bytes.IndexByte(buf, 0); i >= 0 {
			return string(append(out, buf[:i]...)), nil
		}
		out = append(out, buf...)
		addr += uint64(chunk)
	}
	return "", fmt.Errorf("string at %#x longer than %d bytes", addr, max)
}
