//go:build !linux

package lane

import (
	"errors"
	"net"
)

// splicePipe is splice(2)'s pipe, which only Linux has: WriteTo copies instead.
type splicePipe struct{}

func newSplicePipe() (*splicePipe, error) { return nil, errors.ErrUnsupported }

func (*splicePipe) close() {}

func (*splicePipe) fill(*net.TCPConn, int) (int, error) { return 0, errors.ErrUnsupported }

func (*splicePipe) drain(*net.TCPConn, int) error { return errors.ErrUnsupported }
