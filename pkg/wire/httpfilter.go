package wire

import (
	"encoding/binary"
	"fmt"
)

// FilterOp is what a node of an HTTPFilter tests. Values are on the wire: append only.
type FilterOp uint8

// The filter nodes: four leaves, each with its Arg as the user wrote it (the sidecar parses
// it), and two inner nodes, each with its Sub.
const (
	// FilterHeader: Arg is "Name: regex", as Subscribe.Header.
	FilterHeader FilterOp = 1 + iota
	// FilterPath: Arg is a regex, as Subscribe.Path.
	FilterPath
	// FilterMethod: Arg is a comma-separated list of methods, "GET,HEAD".
	FilterMethod
	// FilterQuery: Arg is "name=regex" on a query parameter.
	FilterQuery
	// FilterAllOf matches when each of its Sub does.
	FilterAllOf
	// FilterAnyOf matches when one of its Sub does.
	FilterAnyOf
)

func (op FilterOp) String() string {
	switch op {
	case FilterHeader:
		return "header"
	case FilterPath:
		return "path"
	case FilterMethod:
		return "method"
	case FilterQuery:
		return "query"
	case FilterAllOf:
		return "all-of"
	case FilterAnyOf:
		return "any-of"
	}
	return fmt.Sprintf("filter-op(%d)", uint8(op))
}

// Leaf reports whether op tests the request itself, with an Arg and no Sub.
func (op FilterOp) Leaf() bool { return op >= FilterHeader && op <= FilterQuery }

// Bounds of an HTTPFilter: a team's filters are a handful of leaves, seldom nested twice. The
// sidecar compiles every leaf's regex, so these bound its work as well as its memory.
const (
	MaxFilterDepth = 8  // nodes from the root to a leaf, both counted
	MaxFilterNodes = 64 // in the whole tree
)

// HTTPFilter is a tree of tests on an HTTP request, as the user wrote them: the leaves' Arg
// strings are parsed and their regexes compiled by whoever matches requests (pkg/httpfilter),
// here only bounded. An all-of or any-of has at least one Sub: an empty one would match every
// request or none, which no one means.
type HTTPFilter struct {
	Op  FilterOp
	Arg string       // a leaf's argument; empty for an inner node
	Sub []HTTPFilter // an inner node's children; nil for a leaf
}

// check reports a tree beyond the bounds, or a node that is neither a leaf nor an inner node.
func (f HTTPFilter) check() error {
	nodes := 0
	return f.checkAt(1, &nodes)
}

func (f HTTPFilter) checkAt(depth int, nodes *int) error {
	*nodes++
	switch {
	case depth > MaxFilterDepth:
		return fmt.Errorf("%w: http filter: deeper than %d", ErrTooLarge, MaxFilterDepth)
	case *nodes > MaxFilterNodes:
		return fmt.Errorf("%w: http filter: more than %d nodes", ErrTooLarge, MaxFilterNodes)
	case f.Op.Leaf() && len(f.Sub) > 0:
		return fmt.Errorf("%w: http filter: %s with children", ErrMalformed, f.Op)
	case f.Op.Leaf():
		return checkString(f.Arg, MaxFilterLen, "http filter "+f.Op.String())
	case f.Op != FilterAllOf && f.Op != FilterAnyOf:
		return fmt.Errorf("%w: http filter: unknown %s", ErrMalformed, f.Op)
	case f.Arg != "":
		return fmt.Errorf("%w: http filter: %s with an argument", ErrMalformed, f.Op)
	case len(f.Sub) == 0:
		return fmt.Errorf("%w: http filter: empty %s", ErrMalformed, f.Op)
	}
	for _, s := range f.Sub {
		if err := s.checkAt(depth+1, nodes); err != nil {
			return err
		}
	}
	return nil
}

// appendHTTPFilter encodes f depth first: the op, then a leaf's Arg or an inner node's count
// of children and the children.
func appendHTTPFilter(b []byte, f HTTPFilter) []byte {
	b = append(b, byte(f.Op))
	if f.Op.Leaf() {
		return appendString(b, f.Arg)
	}
	b = binary.AppendUvarint(b, uint64(len(f.Sub)))
	for _, s := range f.Sub {
		b = appendHTTPFilter(b, s)
	}
	return b
}

// parseHTTPFilter decodes a tree within the bounds that check enforces, counting nodes as it
// goes so that a hostile count is refused before anything is allocated for it.
func parseHTTPFilter(b []byte) (HTTPFilter, int, error) {
	nodes := 0
	return parseFilterNode(b, 1, &nodes)
}

func parseFilterNode(b []byte, depth int, nodes *int) (HTTPFilter, int, error) {
	*nodes++
	if depth > MaxFilterDepth {
		return HTTPFilter{}, 0, fmt.Errorf("%w: http filter: deeper than %d", ErrTooLarge, MaxFilterDepth)
	}
	if *nodes > MaxFilterNodes {
		return HTTPFilter{}, 0, fmt.Errorf("%w: http filter: more than %d nodes", ErrTooLarge, MaxFilterNodes)
	}
	op, n, err := parseUint8(b, "http filter op")
	if err != nil {
		return HTTPFilter{}, 0, err
	}
	f := HTTPFilter{Op: FilterOp(op)}
	switch {
	case f.Op.Leaf():
		arg, m, err := parseString(b[n:], MaxFilterLen, "http filter "+f.Op.String())
		if err != nil {
			return HTTPFilter{}, 0, err
		}
		f.Arg = arg
		return f, n + m, nil
	case f.Op != FilterAllOf && f.Op != FilterAnyOf:
		return HTTPFilter{}, 0, fmt.Errorf("%w: http filter: unknown %s", ErrMalformed, f.Op)
	}
	// Each child takes at least two bytes (an op and a length or a count).
	count, m, err := parseCount(b[n:], MaxFilterNodes, 2, "http filter "+f.Op.String())
	if err != nil {
		return HTTPFilter{}, 0, err
	}
	n += m
	if count == 0 {
		return HTTPFilter{}, 0, fmt.Errorf("%w: http filter: empty %s", ErrMalformed, f.Op)
	}
	f.Sub = make([]HTTPFilter, 0, count)
	for range count {
		s, m, err := parseFilterNode(b[n:], depth+1, nodes)
		if err != nil {
			return HTTPFilter{}, 0, err
		}
		f.Sub, n = append(f.Sub, s), n+m
	}
	return f, n, nil
}
