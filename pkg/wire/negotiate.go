package wire

import "slices"

// Negotiate returns the features both sides offer, in the client's order and without
// duplicates. The client's order wins because the client asked; the result is nil when nothing
// is shared.
func Negotiate(client, server []string) []string {
	var out []string
	for _, f := range client {
		if slices.Contains(server, f) && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}
