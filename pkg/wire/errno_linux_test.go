package wire

import (
	"syscall"
	"testing"
)

// TestLinuxErrnoNumbers checks the wire's errno numbers against the kernel's, here where they
// must agree.
func TestLinuxErrnoNumbers(t *testing.T) {
	tests := []struct {
		name  string
		wire  uint32
		local syscall.Errno
	}{
		{"EPERM", linuxEPERM, syscall.EPERM},
		{"ENOENT", linuxENOENT, syscall.ENOENT},
		{"EINTR", linuxEINTR, syscall.EINTR},
		{"EIO", linuxEIO, syscall.EIO},
		{"ENXIO", linuxENXIO, syscall.ENXIO},
		{"EBADF", linuxEBADF, syscall.EBADF},
		{"EAGAIN", linuxEAGAIN, syscall.EAGAIN},
		{"ENOMEM", linuxENOMEM, syscall.ENOMEM},
		{"EACCES", linuxEACCES, syscall.EACCES},
		{"EBUSY", linuxEBUSY, syscall.EBUSY},
		{"EEXIST", linuxEEXIST, syscall.EEXIST},
		{"EXDEV", linuxEXDEV, syscall.EXDEV},
		{"ENODEV", linuxENODEV, syscall.ENODEV},
		{"ENOTDIR", linuxENOTDIR, syscall.ENOTDIR},
		{"EISDIR", linuxEISDIR, syscall.EISDIR},
		{"EINVAL", linuxEINVAL, syscall.EINVAL},
		{"ENFILE", linuxENFILE, syscall.ENFILE},
		{"EMFILE", linuxEMFILE, syscall.EMFILE},
		{"ETXTBSY", linuxETXTBSY, syscall.ETXTBSY},
		{"EFBIG", linuxEFBIG, syscall.EFBIG},
		{"ENOSPC", linuxENOSPC, syscall.ENOSPC},
		{"EROFS", linuxEROFS, syscall.EROFS},
		{"EMLINK", linuxEMLINK, syscall.EMLINK},
		{"EPIPE", linuxEPIPE, syscall.EPIPE},
		{"ENAMETOOLONG", linuxENAMETOOLONG, syscall.ENAMETOOLONG},
		{"ENOSYS", linuxENOSYS, syscall.ENOSYS},
		{"ENOTEMPTY", linuxENOTEMPTY, syscall.ENOTEMPTY},
		{"ELOOP", linuxELOOP, syscall.ELOOP},
		{"EOVERFLOW", linuxEOVERFLOW, syscall.EOVERFLOW},
		{"ENOTSOCK", linuxENOTSOCK, syscall.ENOTSOCK},
		{"EDESTADDRREQ", linuxEDESTADDRREQ, syscall.EDESTADDRREQ},
		{"EMSGSIZE", linuxEMSGSIZE, syscall.EMSGSIZE},
		{"EPROTOTYPE", linuxEPROTOTYPE, syscall.EPROTOTYPE},
		{"EPROTONOSUPPORT", linuxEPROTONOSUPPORT, syscall.EPROTONOSUPPORT},
		{"EOPNOTSUPP", linuxEOPNOTSUPP, syscall.EOPNOTSUPP},
		{"EAFNOSUPPORT", linuxEAFNOSUPPORT, syscall.EAFNOSUPPORT},
		{"EADDRINUSE", linuxEADDRINUSE, syscall.EADDRINUSE},
		{"EADDRNOTAVAIL", linuxEADDRNOTAVAIL, syscall.EADDRNOTAVAIL},
		{"ENETDOWN", linuxENETDOWN, syscall.ENETDOWN},
		{"ENETUNREACH", linuxENETUNREACH, syscall.ENETUNREACH},
		{"ENETRESET", linuxENETRESET, syscall.ENETRESET},
		{"ECONNABORTED", linuxECONNABORTED, syscall.ECONNABORTED},
		{"ECONNRESET", linuxECONNRESET, syscall.ECONNRESET},
		{"ENOBUFS", linuxENOBUFS, syscall.ENOBUFS},
		{"EISCONN", linuxEISCONN, syscall.EISCONN},
		{"ENOTCONN", linuxENOTCONN, syscall.ENOTCONN},
		{"ETIMEDOUT", linuxETIMEDOUT, syscall.ETIMEDOUT},
		{"ECONNREFUSED", linuxECONNREFUSED, syscall.ECONNREFUSED},
		{"EHOSTDOWN", linuxEHOSTDOWN, syscall.EHOSTDOWN},
		{"EHOSTUNREACH", linuxEHOSTUNREACH, syscall.EHOSTUNREACH},
		{"EALREADY", linuxEALREADY, syscall.EALREADY},
		{"EINPROGRESS", linuxEINPROGRESS, syscall.EINPROGRESS},
		{"ESTALE", linuxESTALE, syscall.ESTALE},
		{"EDQUOT", linuxEDQUOT, syscall.EDQUOT},
		{"ECANCELED", linuxECANCELED, syscall.ECANCELED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.wire != uint32(tt.local) {
				t.Errorf("wire %s = %d, kernel says %d", tt.name, tt.wire, tt.local)
			}
			if got := errnoFromWire(tt.wire); got != tt.local {
				t.Errorf("errnoFromWire(%d) = %v, want %v", tt.wire, got, tt.local)
			}
			if got := ErrnoOf(tt.local); got != tt.wire {
				t.Errorf("ErrnoOf(%v) = %d, want %d", tt.local, got, tt.wire)
			}
		})
	}
}
