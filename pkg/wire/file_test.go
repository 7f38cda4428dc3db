package wire

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
)

// TestFileReplyErr: a failed read in the pod reads back here as the same errno, the ones an open
// or a read reports included, whatever the local platform numbers them.
func TestFileReplyErr(t *testing.T) {
	if err := (FileReply{Data: []byte("x")}).Err(); err != nil {
		t.Errorf("data reply: %v, want nil", err)
	}
	tests := []struct {
		name  string
		errno uint32
		is    syscall.Errno
	}{
		{"ENOENT", linuxENOENT, syscall.ENOENT},
		{"EACCES", linuxEACCES, syscall.EACCES},
		{"EISDIR", linuxEISDIR, syscall.EISDIR},
		{"ENOTDIR", linuxENOTDIR, syscall.ENOTDIR},
		{"EINVAL", linuxEINVAL, syscall.EINVAL},
		{"EFBIG", linuxEFBIG, syscall.EFBIG},
		{"ELOOP", linuxELOOP, syscall.ELOOP},
		{"ENAMETOOLONG", linuxENAMETOOLONG, syscall.ENAMETOOLONG},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fmt.Errorf("read /etc/x: %w", FileReply{Errno: tt.errno, Reason: "open /etc/x: " + tt.is.Error()}.Err())
			if !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
			if got := ErrnoOf(err); got != tt.errno {
				t.Errorf("ErrnoOf(Err()) = %d, want %d back", got, tt.errno)
			}
		})
	}
	if got, want := (FileReply{Errno: linuxENOENT}).Err().Error(), "read in the pod: "+syscall.ENOENT.Error(); got != want {
		t.Errorf("reply without a reason reads %q, want %q", got, want)
	}
}
