package wire

// Linux errno numbers, which DialReply, FileReply and FSReply carry whatever the platform at
// either end: the pod is Linux, and its numbers are what the local connect or file operation
// must reproduce. On Linux they equal the syscall package's values (a test checks); elsewhere
// they are translated.
const (
	linuxEPERM           = 1
	linuxENOENT          = 2
	linuxEINTR           = 4
	linuxEIO             = 5
	linuxENXIO           = 6
	linuxEBADF           = 9
	linuxEAGAIN          = 11
	linuxENOMEM          = 12
	linuxEACCES          = 13
	linuxEBUSY           = 16
	linuxEEXIST          = 17
	linuxEXDEV           = 18
	linuxENODEV          = 19
	linuxENOTDIR         = 20
	linuxEISDIR          = 21
	linuxEINVAL          = 22
	linuxENFILE          = 23
	linuxEMFILE          = 24
	linuxETXTBSY         = 26
	linuxEFBIG           = 27
	linuxENOSPC          = 28
	linuxEROFS           = 30
	linuxEMLINK          = 31
	linuxEPIPE           = 32
	linuxENAMETOOLONG    = 36
	linuxENOSYS          = 38
	linuxENOTEMPTY       = 39
	linuxELOOP           = 40
	linuxEOVERFLOW       = 75
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
	linuxESTALE          = 116
	linuxEDQUOT          = 122
	linuxECANCELED       = 125
)
