package layer

// Available reports whether this OS can run a program under the layer at all, so that callers
// can refuse before they set anything up. On Linux it is nil; whether this kernel and its
// settings allow it is New's to find out.
func Available() error { return nil }
