package wire

import (
	"bytes"
	"errors"
	"testing"
)

// leaf is a filter leaf, for tests.
func leaf(op FilterOp, arg string) HTTPFilter { return HTTPFilter{Op: op, Arg: arg} }

// teamFilter is a filter of every node kind: a GET or HEAD on /api/ with either header.
func teamFilter() *HTTPFilter {
	return &HTTPFilter{Op: FilterAllOf, Sub: []HTTPFilter{
		leaf(FilterMethod, "GET,HEAD"),
		leaf(FilterPath, "^/api/"),
		{Op: FilterAnyOf, Sub: []HTTPFilter{leaf(FilterHeader, "X-Dev: ^alice$"), leaf(FilterQuery, "dev=alice")}},
	}}
}

// deepFilter is a chain of depth all-of nodes down to one leaf: depth+1 levels.
func deepFilter(depth int) *HTTPFilter {
	f := leaf(FilterPath, "/")
	for range depth {
		f = HTTPFilter{Op: FilterAllOf, Sub: []HTTPFilter{f}}
	}
	return &f
}

// wideFilter is one any-of of n leaves: n+1 nodes.
func wideFilter(n int, arg string) *HTTPFilter {
	f := HTTPFilter{Op: FilterAnyOf}
	for range n {
		f.Sub = append(f.Sub, leaf(FilterHeader, arg))
	}
	return &f
}

// subscribePrefix is a Subscribe's payload up to its filter: port 80, steal, no header or path.
func subscribePrefix() []byte { return cat([]byte{0, 80}, uv(5), []byte("steal"), uv(0), uv(0)) }

func TestSubscribeFilterBounds(t *testing.T) {
	tests := []struct {
		name string
		f    *HTTPFilter
		want error
		// unencodable: the encoding has no room for the mistake (an inner node's argument,
		// a leaf's children), so that there is nothing to read back.
		unencodable bool
	}{
		{"at the depth bound", deepFilter(MaxFilterDepth - 1), nil, false},
		{"past the depth bound", deepFilter(MaxFilterDepth), ErrTooLarge, false},
		{"at the node bound", wideFilter(MaxFilterNodes-1, "X-A:"), nil, false},
		{"past the node bound", wideFilter(MaxFilterNodes, "X-A:"), ErrTooLarge, false},
		{"an empty any-of", &HTTPFilter{Op: FilterAnyOf}, ErrMalformed, false},
		{"an all-of with an argument", &HTTPFilter{Op: FilterAllOf, Arg: "x", Sub: []HTTPFilter{leaf(FilterPath, "/")}}, ErrMalformed, true},
		{"a leaf with children", &HTTPFilter{Op: FilterPath, Sub: []HTTPFilter{leaf(FilterPath, "/")}}, ErrMalformed, true},
		{"an unknown op", &HTTPFilter{Op: FilterAnyOf + 1}, ErrMalformed, false},
		{"no op", &HTTPFilter{}, ErrMalformed, false},
		{"a leaf argument too long", &HTTPFilter{Op: FilterQuery, Arg: string(bytes.Repeat([]byte("q"), MaxFilterLen+1))}, ErrTooLarge, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := Subscribe{Port: 80, Mode: ModeSteal, Filter: tt.f}
			b, err := AppendMessage(nil, msg)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("AppendMessage error = %v, want %v", err, tt.want)
			}
			if tt.unencodable {
				return
			}
			// What we refuse to send, we refuse to read: encode it by hand.
			payload := appendHTTPFilter(subscribePrefix(), *tt.f)
			if _, _, err := ParseMessage(frame(TypeSubscribe, payload)); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("ParseMessage error = %v, want %v", err, tt.want)
			}
			if err == nil && !bytes.Equal(b, frame(TypeSubscribe, payload)) {
				t.Fatalf("AppendMessage = %x, want %x", b, frame(TypeSubscribe, payload))
			}
		})
	}
}

func TestParseSubscribeFilterMalformed(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		want    error
	}{
		{"an op and nothing else", cat(subscribePrefix(), []byte{byte(FilterPath)}), ErrMalformed},
		{"a count past the end", cat(subscribePrefix(), []byte{byte(FilterAllOf)}, uv(3), []byte{byte(FilterPath)}, uv(0)), ErrMalformed},
		{"a count of 2^40", cat(subscribePrefix(), []byte{byte(FilterAnyOf)}, uv(1<<40)), ErrTooLarge},
		{"a leaf argument past the end", cat(subscribePrefix(), []byte{byte(FilterHeader)}, uv(10), []byte("X-A:")), ErrMalformed},
		{"an op of 0", cat(subscribePrefix(), []byte{0}, uv(0)), ErrMalformed},
		{"bytes after the filter", cat(subscribePrefix(), []byte{byte(FilterPath)}, uv(1), []byte("/"), []byte{0}), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := ParseMessage(frame(TypeSubscribe, tt.payload)); !errors.Is(err, tt.want) {
				t.Fatalf("ParseMessage error = %v, want %v", err, tt.want)
			}
		})
	}
}

// A Subscribe without a filter is encoded as before the filter existed, so that an older
// sidecar reads it.
func TestSubscribeWithoutFilterKeepsItsEncoding(t *testing.T) {
	b, err := AppendMessage(nil, Subscribe{Port: 80, Mode: ModeSteal})
	if err != nil {
		t.Fatal(err)
	}
	if want := frame(TypeSubscribe, subscribePrefix()); !bytes.Equal(b, want) {
		t.Fatalf("encoding %x, want %x", b, want)
	}
}
