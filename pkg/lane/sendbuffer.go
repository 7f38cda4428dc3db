package lane

// chunkSize is the largest unit the send buffer grows and shrinks by: large enough that a
// bulk transfer's writes need few chunks, small enough that an idle lane holds little.
// minChunkSize is the first chunk's: a connection that carries one small request and its
// answer (a new connection per request) allocates that, not chunkSize, each way; the chunks
// double from there while the lane goes on sending.
const (
	chunkSize    = 64 << 10
	minChunkSize = 4 << 10
)

// sendBuffer holds the bytes of one direction from the first unacknowledged one on, in chunks
// of minChunkSize to chunkSize. Trimmed chunks are left to the garbage collector rather than
// reused, because a write in flight may still be reading them: acknowledged bytes have reached
// the peer, but the slice handed to the connection's Write is only done with when Write
// returns.
type sendBuffer struct {
	chunks [][]byte
	start  uint64 // stream offset of chunks[0][head]
	head   int    // bytes of chunks[0] already acknowledged
	size   int    // bytes held
	last   int    // the capacity of the chunk allocated last
}

// end is the stream offset just past the last byte held.
func (b *sendBuffer) end() uint64 { return b.start + uint64(b.size) }

func (b *sendBuffer) append(p []byte) {
	for len(p) > 0 {
		if n := len(b.chunks); n == 0 || len(b.chunks[n-1]) == cap(b.chunks[n-1]) {
			b.last = min(max(2*b.last, len(p), minChunkSize), chunkSize)
			b.chunks = append(b.chunks, make([]byte, 0, b.last))
		}
		last := &b.chunks[len(b.chunks)-1]
		k := min(len(p), cap(*last)-len(*last))
		*last = append(*last, p[:k]...)
		p = p[k:]
		b.size += k
	}
}

// trim drops the bytes before offset to, which must lie within [start, end].
func (b *sendBuffer) trim(to uint64) {
	drop := int(to - b.start)
	b.start = to
	b.size -= drop
	for drop > 0 {
		k := min(drop, len(b.chunks[0])-b.head)
		b.head += k
		drop -= k
		if b.head == len(b.chunks[0]) && (len(b.chunks) > 1 || b.head == cap(b.chunks[0])) {
			b.chunks[0] = nil
			b.chunks = b.chunks[1:]
			b.head = 0
		}
	}
	if b.size == 0 && len(b.chunks) == 1 && b.head == len(b.chunks[0]) {
		b.chunks, b.head = nil, 0
	}
}

// slices returns the bytes between offsets from and to, which must lie within [start, end],
// without copying them.
func (b *sendBuffer) slices(from, to uint64) [][]byte {
	skip, want := int(from-b.start)+b.head, int(to-from)
	var out [][]byte
	for _, c := range b.chunks {
		if want == 0 {
			break
		}
		if skip >= len(c) {
			skip -= len(c)
			continue
		}
		k := min(want, len(c)-skip)
		out = append(out, c[skip:skip+k])
		skip, want = 0, want-k
	}
	return out
}
