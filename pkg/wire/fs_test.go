package wire

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// fsEntry is the encoding of a DirEntry with a zero stat, for payloads built by hand.
func fsEntry(name string) []byte {
	return cat(uv(uint64(len(name))), []byte(name), make([]byte, fileStatLen))
}

// fsListing is the payload of an FSReply listing one entry named name, which AppendMessage may
// refuse to build.
func fsListing(name string) []byte {
	return cat(make([]byte, 4), uv(0), make([]byte, fileStatLen), uv(1), fsEntry(name), uv(0), uv(0), []byte{0})
}

func repeatEntries(n int, name string) []DirEntry {
	entries := make([]DirEntry, n)
	for i := range entries {
		entries[i] = DirEntry{Name: name}
	}
	return entries
}

// TestFSReplyErr: a failed operation in the pod reads back here as the same errno, the ones a
// filesystem reports included, whatever the local platform numbers them.
func TestFSReplyErr(t *testing.T) {
	if err := (FSReply{Stat: testStat()}).Err(); err != nil {
		t.Errorf("stat reply: %v, want nil", err)
	}
	tests := []struct {
		name  string
		errno uint32
		is    syscall.Errno
	}{
		{"ENOENT", linuxENOENT, syscall.ENOENT},
		{"EACCES", linuxEACCES, syscall.EACCES},
		{"EPERM", linuxEPERM, syscall.EPERM},
		{"EISDIR", linuxEISDIR, syscall.EISDIR},
		{"ENOTDIR", linuxENOTDIR, syscall.ENOTDIR},
		{"ENOTEMPTY", linuxENOTEMPTY, syscall.ENOTEMPTY},
		{"EEXIST", linuxEEXIST, syscall.EEXIST},
		{"ELOOP", linuxELOOP, syscall.ELOOP},
		{"EXDEV", linuxEXDEV, syscall.EXDEV},
		{"EROFS", linuxEROFS, syscall.EROFS},
		{"ENOSPC", linuxENOSPC, syscall.ENOSPC},
		{"EBUSY", linuxEBUSY, syscall.EBUSY},
		{"EFBIG", linuxEFBIG, syscall.EFBIG},
		{"EINVAL", linuxEINVAL, syscall.EINVAL},
		{"ENAMETOOLONG", linuxENAMETOOLONG, syscall.ENAMETOOLONG},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fmt.Errorf("lstat /etc/x: %w", FSReply{Errno: tt.errno, Reason: "lstat /etc/x: " + tt.is.Error()}.Err())
			if !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
			if got := ErrnoOf(err); got != tt.errno {
				t.Errorf("ErrnoOf(Err()) = %d, want %d back", got, tt.errno)
			}
		})
	}
	if got, want := (FSReply{Errno: linuxENOENT}).Err().Error(), "in the pod's filesystem: "+syscall.ENOENT.Error(); got != want {
		t.Errorf("reply without a reason reads %q, want %q", got, want)
	}
}

func TestSplitDirEntries(t *testing.T) {
	var entries []DirEntry
	for i := range 5000 {
		entries = append(entries, DirEntry{Name: fmt.Sprintf("..%04d_%s", i, strings.Repeat("x", i%(maxNameLen-6))), Stat: testStat()})
	}
	replies, err := SplitDirEntries(entries)
	if err != nil {
		t.Fatal(err)
	}
	if len(replies) < 10 {
		t.Fatalf("%d replies for ~1 MiB of entries", len(replies))
	}
	var joined []DirEntry
	for i, r := range replies {
		b, err := AppendMessage(nil, r)
		if err != nil {
			t.Fatalf("reply %d does not fit a frame: %v", i, err)
		}
		if len(b) < MaxFrameSize/2 && i < len(replies)-1 {
			t.Errorf("reply %d of %d holds %d bytes, under half a frame", i, len(replies), len(b))
		}
		if r.More != (i < len(replies)-1) {
			t.Fatalf("reply %d of %d has More=%v", i, len(replies), r.More)
		}
		joined = append(joined, r.Entries...)
	}
	if !reflect.DeepEqual(joined, entries) {
		t.Fatal("the replies do not add up to the listing, in order")
	}

	// The shortest names fill a reply by count, not by bytes.
	replies, err = SplitDirEntries(repeatEntries(3*maxDirEntriesPerReply, "a"))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range replies {
		if _, err := AppendMessage(nil, r); err != nil {
			t.Fatalf("reply %d of short names does not fit a frame: %v", i, err)
		}
	}

	for _, name := range []string{"", ".", "..", "a/b", "a\x00", strings.Repeat("n", maxNameLen+1)} {
		if _, err := SplitDirEntries([]DirEntry{{Name: "ok"}, {Name: name}}); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", name)) {
			t.Errorf("an entry named %q: %v, want a refusal naming it", name, err)
		}
	}
	if replies, err := SplitDirEntries(nil); err != nil || len(replies) != 1 || replies[0].More || replies[0].Entries != nil {
		t.Fatalf("empty listing: %#v, %v", replies, err)
	}
}
