// Package progress prints the steps of a session's start on stderr, each with the time since the
// start, so that a slow step is visible. Once the user's program runs, it owns stdout and stderr:
// the commands print their last step (Done) just before they hand over.
package progress

import (
	"fmt"
	"io"
	"time"
)

// Printer writes a command's steps and warnings, one line each.
type Printer struct {
	w     io.Writer
	start time.Time
}

// New returns a Printer on w whose clock starts now.
func New(w io.Writer) *Printer {
	return &Printer{w: w, start: time.Now()}
}

// Step prints one step of the start, with the time since New.
func (p *Printer) Step(format string, args ...any) {
	fmt.Fprintf(p.w, "remocal: [%5.1fs] %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

// Warn prints what works less well than asked, and why; the command goes on.
func (p *Printer) Warn(format string, args ...any) {
	fmt.Fprintf(p.w, "remocal: warning: %s\n", fmt.Sprintf(format, args...))
}

// Done marks the hand-over to the user's program.
func (p *Printer) Done() {
	p.Step("ready")
}
