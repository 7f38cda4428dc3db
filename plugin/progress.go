package plugin

import (
	"fmt"
	"io"
	"time"
)

// progress prints the steps of a session's start on stderr, each with the time since the start,
// so a slow step is visible. Once the user's program runs, it owns stdout and stderr.
type progress struct {
	w     io.Writer
	start time.Time
}

func newProgress(w io.Writer) *progress {
	return &progress{w: w, start: time.Now()}
}

func (p *progress) step(format string, args ...any) {
	fmt.Fprintf(p.w, "remocal: [%5.1fs] %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

func (p *progress) warn(format string, args ...any) {
	fmt.Fprintf(p.w, "remocal: warning: %s\n", fmt.Sprintf(format, args...))
}

// done marks the hand-over to the user's program.
func (p *progress) done() {
	p.step("ready")
}
