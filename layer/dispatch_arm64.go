//go:build linux

package layer

// dispatchArch answers the syscalls only this architecture has: none.
func (s *Supervisor) dispatchArch(*call) bool { return false }
