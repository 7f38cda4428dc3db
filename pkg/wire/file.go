package wire

import (
	"encoding/binary"
	"fmt"
)

// MaxFileChunk bounds a FileReply's data so that the reply with its other fields fits a frame.
const MaxFileChunk = MaxFrameSize - maxReasonLen - 64

// MaxFileSize bounds the data of all the replies to one FileRequest together: a sidecar refuses
// a larger file with EFBIG, and a client stops reading a sidecar that sends more. Files worth
// reading this way are configuration, far smaller; the bound is what each side may hold. An
// FSRead's replies and an FSWrite's requests have the same bound.
const MaxFileSize = 16 << 20

// FileRequest asks the sidecar for a file of the target container, by absolute path in the
// container's filesystem.
type FileRequest struct {
	Path string
}

// Type implements Message.
func (FileRequest) Type() Type { return TypeFileRequest }

func (r FileRequest) check() error { return checkString(r.Path, maxPathLen, "file path") }

func (r FileRequest) appendPayload(b []byte) []byte { return appendString(b, r.Path) }

func parseFileRequest(b []byte) (FileRequest, int, error) {
	path, n, err := parseString(b, maxPathLen, "file path")
	if err != nil {
		return FileRequest{}, 0, err
	}
	return FileRequest{Path: path}, n, nil
}

// FileReply answers a FileRequest with the file's content in one or more replies: every one
// but the last has More set. A failure is one reply with the Linux errno of the failed open or
// read (ENOENT, EACCES, EISDIR, ENOTDIR, ELOOP; EINVAL for a path that is not absolute or has a
// ".." element; EFBIG past MaxFileSize), so the local program can get the error the pod would.
type FileReply struct {
	Errno  uint32
	Reason string
	Data   []byte
	More   bool
}

// Type implements Message.
func (FileReply) Type() Type { return TypeFileReply }

func (r FileReply) check() error {
	if len(r.Data) > MaxFileChunk {
		return fmt.Errorf("%w: file data: %d bytes, max %d", ErrTooLarge, len(r.Data), MaxFileChunk)
	}
	return nil
}

func (r FileReply) appendPayload(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, r.Errno)
	b = appendString(b, clampReason(r.Reason))
	b = appendString(b, string(r.Data))
	return appendBool(b, r.More)
}

func parseFileReply(b []byte) (FileReply, int, error) {
	errno, n, err := parseUint32(b, "file reply errno")
	if err != nil {
		return FileReply{}, 0, err
	}
	reason, m, err := parseString(b[n:], maxReasonLen, "file reply reason")
	if err != nil {
		return FileReply{}, 0, err
	}
	n += m
	data, m, err := parseString(b[n:], MaxFileChunk, "file data")
	if err != nil {
		return FileReply{}, 0, err
	}
	n += m
	more, m, err := parseBool(b[n:], "file reply more")
	if err != nil {
		return FileReply{}, 0, err
	}
	r := FileReply{Errno: errno, Reason: reason, More: more}
	if data != "" {
		r.Data = []byte(data)
	}
	return r, n + m, nil
}

// Err returns the failure the reply reports as a syscall error (errors.Is with
// syscall.ENOENT works), or nil.
func (r FileReply) Err() error { return replyError(r.Errno, r.Reason, "read in the pod") }
