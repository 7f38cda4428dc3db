//go:build !linux

package layer

import "runtime"

// Platform names the operating system and architecture.
func Platform() string { return runtime.GOOS + " " + runtime.GOARCH }

// CheckSeccomp fails off Linux: the layer needs seccomp user notification.
func CheckSeccomp() error { return ErrUnsupported }

// CheckPtrace fails off Linux.
func CheckPtrace() error { return ErrUnsupported }

// CheckUserNamespaces fails off Linux.
func CheckUserNamespaces(string) error { return ErrUnsupported }

// CheckFUSE fails off Linux.
func CheckFUSE() error { return ErrUnsupported }
