package plugin

import (
	"fmt"
	"io"
	"strings"
)

// checkStatus is the outcome of one doctor check.
type checkStatus string

const (
	// statusOK: works.
	statusOK checkStatus = "ok"
	// statusWarn: exec works without something (a feature, a faster path); the row says what.
	statusWarn checkStatus = "warn"
	// statusFail: exec cannot work until it is fixed.
	statusFail checkStatus = "fail"
	// statusSkip: not checked, because there is no TARGET or what it needs failed (that row
	// says why).
	statusSkip checkStatus = "skip"
)

// check is one row of the doctor's report.
type check struct {
	Name   string      `json:"name"`
	Status checkStatus `json:"status"`
	Detail string      `json:"detail"`
	// Fix says what to do; set on every warn and fail row that the user can act on.
	Fix string `json:"fix,omitempty"`
}

// doctorReport is what doctor prints. Its JSON form is for tools: field names and status values
// are stable.
type doctorReport struct {
	// Ready: no check failed, so exec can work (the exit code is 0).
	Ready  bool    `json:"ready"`
	Checks []check `json:"checks"`
}

func newDoctorReport(checks []check) doctorReport {
	r := doctorReport{Ready: true, Checks: make([]check, len(checks))}
	for i, c := range checks {
		if c.Status == statusFail {
			r.Ready = false
		}
		c.Detail, c.Fix = oneLine(c.Detail), oneLine(c.Fix)
		r.Checks[i] = c
	}
	return r
}

// doctorOutputs are the values of doctor's -o, as kubectl names them.
var doctorOutputs = []string{"", "json", "yaml"}

// print writes the report as a table (kubectl's column layout) or as JSON or YAML.
func (r doctorReport) print(w io.Writer, output string) error {
	switch output {
	case "":
		return r.printTable(w)
	default:
		return printObject(w, r, output, "the report")
	}
}

func (r doctorReport) printTable(w io.Writer) error {
	return printTable(w, func(tw io.Writer) {
		fmt.Fprintln(tw, "CHECK\tSTATUS\tDETAIL\tFIX")
		for _, c := range r.Checks {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, c.Status, c.Detail, c.Fix)
		}
	})
}

// oneLine keeps a value on its row and in its column: error messages may hold newlines or tabs.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
