package lane

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func TestSendBuffer(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var b sendBuffer
	var all []byte // every byte ever appended; the buffer holds all[b.start:]
	for range 2000 {
		switch rng.IntN(3) {
		case 0, 1:
			p := make([]byte, rng.IntN(3*chunkSize/2))
			for i := range p {
				p[i] = byte(rng.Uint32())
			}
			b.append(p)
			all = append(all, p...)
		case 2:
			b.trim(b.start + uint64(rng.IntN(b.size+1)))
		}
		if b.end() != uint64(len(all)) {
			t.Fatalf("end = %d, want %d", b.end(), len(all))
		}
		from := b.start + uint64(rng.IntN(b.size+1))
		to := from + uint64(rng.IntN(int(b.end()-from)+1))
		if got := bytes.Join(b.slices(from, to), nil); !bytes.Equal(got, all[from:to]) {
			t.Fatalf("slices(%d, %d) differ from what was appended", from, to)
		}
	}
	b.trim(b.end())
	if b.size != 0 || len(b.chunks) > 1 {
		t.Errorf("emptied buffer holds %d bytes in %d chunks", b.size, len(b.chunks))
	}
}

// A small write takes a small chunk; the chunks grow to chunkSize as the writes go on.
func TestSendBufferGrowsFromSmallChunks(t *testing.T) {
	var b sendBuffer
	b.append([]byte("PING\r\n"))
	if c := cap(b.chunks[0]); c != minChunkSize {
		t.Errorf("a 6-byte write took a chunk of %d bytes, want %d", c, minChunkSize)
	}
	for range 64 {
		b.append(make([]byte, 10<<10))
	}
	if c := cap(b.chunks[len(b.chunks)-1]); c != chunkSize {
		t.Errorf("after 640 KiB written the last chunk holds %d bytes, want %d", c, chunkSize)
	}
}
