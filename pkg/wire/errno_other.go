//go:build !linux

package wire

import "syscall"

// errnoPair relates a Linux errno number to the local errno of the same meaning.
type errnoPair struct {
	linux uint32
	local syscall.Errno
}

// errnoPairs lists the errnos a connect or a file operation can plausibly return. It is a function, not a table
// variable, to keep the package free of mutable globals; it is small and off the hot path.
func errnoPairs() []errnoPair {
	return []errnoPair{
		{linuxEPERM, syscall.EPERM},
		{linuxENOENT, syscall.ENOENT},
		{linuxEINTR, syscall.EINTR},
		{linuxEIO, syscall.EIO},
		{linuxENXIO, syscall.ENXIO},
		{linuxEBADF, syscall.EBADF},
		{linuxEAGAIN, syscall.EAGAIN},
		{linuxENOMEM, syscall.ENOMEM},
		{linuxEACCES, syscall.EACCES},
		{linuxEBUSY, syscall.EBUSY},
		{linuxEEXIST, syscall.EEXIST},
		{linuxEXDEV, syscall.EXDEV},
		{linuxENODEV, syscall.ENODEV},
		{linuxENOTDIR, syscall.ENOTDIR},
		{linuxEISDIR, syscall.EISDIR},
		{linuxEINVAL, syscall.EINVAL},
		{linuxENFILE, syscall.ENFILE},
		{linuxEMFILE, syscall.EMFILE},
		{linuxETXTBSY, syscall.ETXTBSY},
		{linuxEFBIG, syscall.EFBIG},
		{linuxENOSPC, syscall.ENOSPC},
		{linuxEROFS, syscall.EROFS},
		{linuxEMLINK, syscall.EMLINK},
		{linuxEPIPE, syscall.EPIPE},
		{linuxENAMETOOLONG, syscall.ENAMETOOLONG},
		{linuxENOSYS, syscall.ENOSYS},
		{linuxENOTEMPTY, syscall.ENOTEMPTY},
		{linuxELOOP, syscall.ELOOP},
		{linuxEOVERFLOW, syscall.EOVERFLOW},
		{linuxENOTSOCK, syscall.ENOTSOCK},
		{linuxEDESTADDRREQ, syscall.EDESTADDRREQ},
		{linuxEMSGSIZE, syscall.EMSGSIZE},
		{linuxEPROTOTYPE, syscall.EPROTOTYPE},
		{linuxEPROTONOSUPPORT, syscall.EPROTONOSUPPORT},
		{linuxEOPNOTSUPP, syscall.EOPNOTSUPP},
		{linuxEAFNOSUPPORT, syscall.EAFNOSUPPORT},
		{linuxEADDRINUSE, syscall.EADDRINUSE},
		{linuxEADDRNOTAVAIL, syscall.EADDRNOTAVAIL},
		{linuxENETDOWN, syscall.ENETDOWN},
		{linuxENETUNREACH, syscall.ENETUNREACH},
		{linuxENETRESET, syscall.ENETRESET},
		{linuxECONNABORTED, syscall.ECONNABORTED},
		{linuxECONNRESET, syscall.ECONNRESET},
		{linuxENOBUFS, syscall.ENOBUFS},
		{linuxEISCONN, syscall.EISCONN},
		{linuxENOTCONN, syscall.ENOTCONN},
		{linuxETIMEDOUT, syscall.ETIMEDOUT},
		{linuxECONNREFUSED, syscall.ECONNREFUSED},
		{linuxEHOSTDOWN, syscall.EHOSTDOWN},
		{linuxEHOSTUNREACH, syscall.EHOSTUNREACH},
		{linuxEALREADY, syscall.EALREADY},
		{linuxEINPROGRESS, syscall.EINPROGRESS},
		{linuxESTALE, syscall.ESTALE},
		{linuxEDQUOT, syscall.EDQUOT},
		{linuxECANCELED, syscall.ECANCELED},
	}
}

// errnoToWire translates a local errno; one without a Linux counterpart here becomes EIO.
func errnoToWire(e syscall.Errno) uint32 {
	for _, p := range errnoPairs() {
		if p.local == e {
			return p.linux
		}
	}
	return linuxEIO
}

// errnoFromWire translates a Linux errno; one without a local counterpart here becomes EIO.
func errnoFromWire(n uint32) syscall.Errno {
	for _, p := range errnoPairs() {
		if p.linux == n {
			return p.local
		}
	}
	return syscall.EIO
}
