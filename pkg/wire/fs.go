package wire

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// MaxFSChunk bounds the data of one FSRequest or FSReply, so that the frame fits with the other
// fields at their bounds: two paths in a request, a reason and a link target in a reply.
const MaxFSChunk = MaxFrameSize - maxReasonLen - 2*maxPathLen - 256

// MaxDirEntries bounds a directory listing, all its replies together: a sidecar refuses a larger
// directory with EFBIG, and a client stops reading a sidecar that sends more. Each entry costs a
// client about a hundred bytes, so this is about what MaxFileSize is for a file.
const MaxDirEntries = 1 << 17

// maxNameLen is NAME_MAX, the longest name of a directory entry.
const maxNameLen = 255

// fileStatLen is the fixed encoding of a FileStat.
const fileStatLen = 4 + 8 + 8 + 8 + 4 + 4 + 4 + 8 + 8 + 8 + 8

// minDirEntryLen is the least a DirEntry takes: a one-byte name and its length, and the stat.
// It bounds an entry count before anything is allocated for it.
const minDirEntryLen = 1 + 1 + fileStatLen

// maxDirEntriesPerReply is how many entries of the shortest name one frame can hold.
const maxDirEntriesPerReply = MaxFrameSize / minDirEntryLen

// FSOp is the filesystem operation an FSRequest asks for. Values are on the wire: append only,
// never renumber.
type FSOp uint8

// The filesystem operations. Paths are absolute in the target container's filesystem, and
// symlinks resolve inside the container's root.
const (
	// FSLstat: the lstat of Path, in FSReply.Stat.
	FSLstat FSOp = 1 + iota
	// FSStat: the stat of Path, following symlinks.
	FSStat
	// FSReadDir: the entries of directory Path but "." and "..", each with its lstat, in
	// FSReply.Entries over as many replies as needed (More); SplitDirEntries cuts them.
	FSReadDir
	// FSReadLink: the target of symlink Path, in FSReply.Target.
	FSReadLink
	// FSRead: the whole content of Path, following symlinks, in FSReply.Data chunks (More). The
	// first reply also carries the Stat of the opened file. Size is the most the client takes
	// (0 leaves it to the sidecar): a larger file is EFBIG.
	FSRead
	// FSWrite: create or truncate Path, set its permission bits to Mode (0 keeps an existing
	// file's), and write the Data of every request frame; the reply's Stat is the file's after
	// writing, which reached the disk before the answer.
	FSWrite
	// FSMkdir: make directory Path with permission bits Mode; the reply's Stat is the new one's.
	FSMkdir
	// FSRemove: unlink Path, or remove the empty directory Path when Flags has FSRemoveDir.
	FSRemove
	// FSRename: rename Path to Path2, replacing what Path2 names.
	FSRename
	// FSSymlink: make symlink Path pointing to Path2 (taken as it is: relative, absolute,
	// dangling); the reply's Stat is the link's.
	FSSymlink
)

// FSRemoveDir in FSRequest.Flags makes FSRemove an rmdir.
const FSRemoveDir uint32 = 1

func (o FSOp) String() string {
	switch o {
	case FSLstat:
		return "lstat"
	case FSStat:
		return "stat"
	case FSReadDir:
		return "readdir"
	case FSReadLink:
		return "readlink"
	case FSRead:
		return "read"
	case FSWrite:
		return "write"
	case FSMkdir:
		return "mkdir"
	case FSRemove:
		return "remove"
	case FSRename:
		return "rename"
	case FSSymlink:
		return "symlink"
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// FileStat is a file's stat as the pod's kernel reports it.
type FileStat struct {
	Mode   uint32 // st_mode: type bits (S_IFMT) and permission bits
	Size   int64
	Blocks int64 // 512-byte blocks allocated
	Ino    uint64
	Nlink  uint32
	UID    uint32
	GID    uint32
	Rdev   uint64
	// Times in nanoseconds since the Unix epoch.
	Atime, Mtime, Ctime int64
}

func appendFileStat(b []byte, s FileStat) []byte {
	b = binary.BigEndian.AppendUint32(b, s.Mode)
	b = binary.BigEndian.AppendUint64(b, uint64(s.Size))
	b = binary.BigEndian.AppendUint64(b, uint64(s.Blocks))
	b = binary.BigEndian.AppendUint64(b, s.Ino)
	b = binary.BigEndian.AppendUint32(b, s.Nlink)
	b = binary.BigEndian.AppendUint32(b, s.UID)
	b = binary.BigEndian.AppendUint32(b, s.GID)
	b = binary.BigEndian.AppendUint64(b, s.Rdev)
	b = binary.BigEndian.AppendUint64(b, uint64(s.Atime))
	b = binary.BigEndian.AppendUint64(b, uint64(s.Mtime))
	return binary.BigEndian.AppendUint64(b, uint64(s.Ctime))
}

// parseFileStat reads the fixed-size encoding in one bounds check.
func parseFileStat(b []byte, field string) (FileStat, int, error) {
	if len(b) < fileStatLen {
		return FileStat{}, 0, fmt.Errorf("%w: %s: need %d bytes, have %d", ErrMalformed, field, fileStatLen, len(b))
	}
	be := binary.BigEndian
	return FileStat{
		Mode:   be.Uint32(b[0:]),
		Size:   int64(be.Uint64(b[4:])),
		Blocks: int64(be.Uint64(b[12:])),
		Ino:    be.Uint64(b[20:]),
		Nlink:  be.Uint32(b[28:]),
		UID:    be.Uint32(b[32:]),
		GID:    be.Uint32(b[36:]),
		Rdev:   be.Uint64(b[40:]),
		Atime:  int64(be.Uint64(b[48:])),
		Mtime:  int64(be.Uint64(b[56:])),
		Ctime:  int64(be.Uint64(b[64:])),
	}, fileStatLen, nil
}

// DirEntry is one entry of a directory listing, with its lstat.
type DirEntry struct {
	Name string
	Stat FileStat
}

// checkName refuses what cannot be one entry of a directory: a client joins the name to the
// directory's path, and an empty name, ".", "..", or one with a "/" would make that path name
// another file than the one listed.
func checkName(name string) error {
	switch {
	case len(name) > maxNameLen:
		return fmt.Errorf("%w: dir entry name: %d bytes, max %d", ErrTooLarge, len(name), maxNameLen)
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("%w: dir entry name %q", ErrMalformed, name)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("%w: dir entry name %q has a slash or a NUL", ErrMalformed, name)
	}
	return nil
}

// FSRequest asks for one filesystem operation on a stream of its own, which it opens: the
// client opens a stream, sends the request, reads FSReply frames until one without More, and
// both ends close the stream. A write sends its data in as many requests as it takes, every one
// but the last with More set; the requests after the first carry only Op FSWrite, Data and
// More.
type FSRequest struct {
	Op    FSOp
	Path  string
	Path2 string // FSRename: the new name; FSSymlink: the link's target
	Mode  uint32 // FSWrite, FSMkdir: permission bits
	Flags uint32 // FSRemove: FSRemoveDir; 0 for the other operations
	Size  int64  // FSRead: the most the client takes
	Data  []byte // FSWrite: a chunk of the content
	More  bool   // FSWrite: more data follows in another request
}

// Type implements Message.
func (FSRequest) Type() Type { return TypeFSRequest }

func (r FSRequest) check() error {
	if err := checkString(r.Path, maxPathLen, "fs path"); err != nil {
		return err
	}
	if err := checkString(r.Path2, maxPathLen, "fs path2"); err != nil {
		return err
	}
	if len(r.Data) > MaxFSChunk {
		return fmt.Errorf("%w: fs request data: %d bytes, max %d", ErrTooLarge, len(r.Data), MaxFSChunk)
	}
	return nil
}

func (r FSRequest) appendPayload(b []byte) []byte {
	b = append(b, byte(r.Op))
	b = appendString(b, r.Path)
	b = appendString(b, r.Path2)
	b = binary.BigEndian.AppendUint32(b, r.Mode)
	b = binary.BigEndian.AppendUint32(b, r.Flags)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Size))
	b = appendString(b, string(r.Data))
	return appendBool(b, r.More)
}

// parseFSRequest keeps an Op it does not know: the sidecar answers it with an errno, as it
// would an operation its kernel cannot do.
func parseFSRequest(b []byte) (FSRequest, int, error) {
	var r FSRequest
	op, n, err := parseUint8(b, "fs op")
	if err != nil {
		return FSRequest{}, 0, err
	}
	r.Op = FSOp(op)
	for _, field := range []struct {
		to   *string
		what string
	}{{&r.Path, "fs path"}, {&r.Path2, "fs path2"}} {
		v, m, err := parseString(b[n:], maxPathLen, field.what)
		if err != nil {
			return FSRequest{}, 0, err
		}
		*field.to, n = v, n+m
	}
	for _, field := range []struct {
		to   *uint32
		what string
	}{{&r.Mode, "fs mode"}, {&r.Flags, "fs flags"}} {
		v, m, err := parseUint32(b[n:], field.what)
		if err != nil {
			return FSRequest{}, 0, err
		}
		*field.to, n = v, n+m
	}
	size, m, err := parseUint64(b[n:], "fs size")
	if err != nil {
		return FSRequest{}, 0, err
	}
	r.Size, n = int64(size), n+m
	data, m, err := parseString(b[n:], MaxFSChunk, "fs request data")
	if err != nil {
		return FSRequest{}, 0, err
	}
	if data != "" {
		r.Data = []byte(data)
	}
	n += m
	more, m, err := parseBool(b[n:], "fs request more")
	if err != nil {
		return FSRequest{}, 0, err
	}
	r.More = more
	return r, n + m, nil
}

// FSReply answers an FSRequest, in one reply or, for a listing or a read, as many as it takes:
// every one but the last has More set. A failure is one reply with the Linux errno of the
// failed call (ENOENT, EACCES, EISDIR, ENOTDIR, ENOTEMPTY, EEXIST, ELOOP...; EINVAL for a path
// that is not absolute or has a ".." element; EFBIG past the sidecar's bounds), so that a local
// filesystem can fail as the pod's would.
type FSReply struct {
	Errno   uint32
	Reason  string // for people and logs; shortened when encoded if over-long
	Stat    FileStat
	Entries []DirEntry
	Target  string
	Data    []byte
	More    bool
}

// Type implements Message.
func (FSReply) Type() Type { return TypeFSReply }

func (r FSReply) check() error {
	if len(r.Entries) > maxDirEntriesPerReply {
		return fmt.Errorf("%w: dir entries: %d, max %d", ErrTooLarge, len(r.Entries), maxDirEntriesPerReply)
	}
	for _, e := range r.Entries {
		if err := checkName(e.Name); err != nil {
			return err
		}
	}
	if err := checkString(r.Target, maxPathLen, "fs link target"); err != nil {
		return err
	}
	if len(r.Data) > MaxFSChunk {
		return fmt.Errorf("%w: fs reply data: %d bytes, max %d", ErrTooLarge, len(r.Data), MaxFSChunk)
	}
	return nil
}

func (r FSReply) appendPayload(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, r.Errno)
	b = appendString(b, clampReason(r.Reason))
	b = appendFileStat(b, r.Stat)
	b = binary.AppendUvarint(b, uint64(len(r.Entries)))
	for _, e := range r.Entries {
		b = appendString(b, e.Name)
		b = appendFileStat(b, e.Stat)
	}
	b = appendString(b, r.Target)
	b = appendString(b, string(r.Data))
	return appendBool(b, r.More)
}

func parseFSReply(b []byte) (FSReply, int, error) {
	var r FSReply
	errno, n, err := parseUint32(b, "fs reply errno")
	if err != nil {
		return FSReply{}, 0, err
	}
	r.Errno = errno
	reason, m, err := parseString(b[n:], maxReasonLen, "fs reply reason")
	if err != nil {
		return FSReply{}, 0, err
	}
	r.Reason, n = reason, n+m
	stat, m, err := parseFileStat(b[n:], "fs reply stat")
	if err != nil {
		return FSReply{}, 0, err
	}
	r.Stat, n = stat, n+m
	entries, m, err := parseDirEntries(b[n:])
	if err != nil {
		return FSReply{}, 0, err
	}
	r.Entries, n = entries, n+m
	target, m, err := parseString(b[n:], maxPathLen, "fs link target")
	if err != nil {
		return FSReply{}, 0, err
	}
	r.Target, n = target, n+m
	data, m, err := parseString(b[n:], MaxFSChunk, "fs reply data")
	if err != nil {
		return FSReply{}, 0, err
	}
	if data != "" {
		r.Data = []byte(data)
	}
	n += m
	more, m, err := parseBool(b[n:], "fs reply more")
	if err != nil {
		return FSReply{}, 0, err
	}
	r.More = more
	return r, n + m, nil
}

// parseDirEntries checks the count against its bound and the bytes left before allocating, as
// parseStrings does. An empty list decodes as nil.
func parseDirEntries(b []byte) ([]DirEntry, int, error) {
	count, n, err := parseCount(b, maxDirEntriesPerReply, minDirEntryLen, "dir entries")
	if err != nil || count == 0 {
		return nil, n, err
	}
	entries := make([]DirEntry, count)
	for i := range entries {
		name, m, err := parseString(b[n:], maxNameLen, "dir entry name")
		if err != nil {
			return nil, 0, err
		}
		if err := checkName(name); err != nil {
			return nil, 0, err
		}
		n += m
		stat, m, err := parseFileStat(b[n:], "dir entry stat")
		if err != nil {
			return nil, 0, err
		}
		entries[i], n = DirEntry{Name: name, Stat: stat}, n+m
	}
	return entries, n, nil
}

// Err returns the failure the reply reports as a syscall error (errors.Is with
// syscall.ENOENT works), or nil.
func (r FSReply) Err() error { return replyError(r.Errno, r.Reason, "in the pod's filesystem") }

// SplitDirEntries cuts a directory listing into replies that each fit a frame, in order, every
// one but the last with More set; an empty listing is one reply. An entry that no reply can
// carry (a name over NAME_MAX, or one with a slash or a NUL) is refused, by name.
func SplitDirEntries(entries []DirEntry) ([]FSReply, error) {
	// Per reply: the errno, an empty reason, target and data, the stat, the count and More.
	// Per entry: its name with a length of at most 2 bytes, and its stat.
	const overhead = 4 + 1 + fileStatLen + 3 + 1 + 1 + 1 + 16
	var replies []FSReply
	var chunk []DirEntry
	size := overhead
	for _, e := range entries {
		if err := checkName(e.Name); err != nil {
			return nil, fmt.Errorf("directory entry %q: %w", e.Name, err)
		}
		entry := 2 + len(e.Name) + fileStatLen
		if size+entry > MaxFrameSize || len(chunk) == maxDirEntriesPerReply {
			replies = append(replies, FSReply{Entries: chunk, More: true})
			chunk, size = nil, overhead
		}
		chunk = append(chunk, e)
		size += entry
	}
	return append(replies, FSReply{Entries: chunk}), nil
}
