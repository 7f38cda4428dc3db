package wire

// Linux errno numbers, which DialReply carries whatever the platform at either end: the pod is
// Linux, and its numbers are what the local connect must reproduce. On Linux they equal the
// syscall package's values (a test checks); elsewhere they are translated.
const (
	linuxEPERM           = 1
	linuxENOENT          = 2
	linuxEINTR           = 4
	linuxEIO             = 5
	linuxEAGAIN          = 11
	linuxENOMEM          = 12
	linuxEACCES          = 13
	linuxEINVAL          = 22
	linuxENFILE          = 23
	linuxEMFILE          = 24
	linuxEPIPE           = 32
	linuxENOTSOCK        = 88
	linuxEDESTADDRREQ    = 89
	linuxEMSGSIZE        = 90
	linuxEPROTOTYPE      = 91
	linuxEPROTONOSUPPORT = 93
	linuxEOPNOTSUPP      = 95
	linuxEAFNOSUPPORT    = 97
	linuxEADDRINUSE      = 98
	linuxEADDRNOTAVAIL   = 99
	linuxENETDOWN        = 100
	linuxENETUNREACH     = 101
	linuxENETRESET       = 102
	linuxECONNABORTED    = 103
	linuxECONNRESET      = 104
	linuxENOBUFS         = 105
	linuxEISCONN         = 106
	linuxENOTCONN        = 107
	linuxETIMEDOUT       = 110
	linuxECONNREFUSED    = 111
	linuxEHOSTDOWN       = 112
	linuxEHOSTUNREACH    = 113
	linuxEALREADY        = 114
	linuxEINPROGRESS     = 115
	linuxECANCELED       = 125
)
