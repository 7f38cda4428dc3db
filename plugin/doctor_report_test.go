package plugin

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

var sampleChecks = []check{
	{Name: "os", Status: statusOK, Detail: "Linux 6.1.0 x86_64"},
	{Name: "steal/mirror", Status: statusWarn, Detail: "unavailable:\nNET_ADMIN\tforbidden", Fix: "use a privileged namespace"},
	{Name: "target", Status: statusSkip, Detail: "no TARGET"},
}

func TestDoctorReportReady(t *testing.T) {
	if r := newDoctorReport(sampleChecks); !r.Ready {
		t.Errorf("warn and skip rows made the report not ready")
	}
	failing := append(append([]check(nil), sampleChecks...), check{Name: "api server", Status: statusFail, Detail: "refused", Fix: "start it"})
	if r := newDoctorReport(failing); r.Ready {
		t.Errorf("a fail row left the report ready")
	}
}

func TestDoctorTable(t *testing.T) {
	var out bytes.Buffer
	if err := newDoctorReport(sampleChecks).print(&out, ""); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 1+len(sampleChecks) {
		t.Fatalf("%d lines, want a header and one per check:\n%s", len(lines), out.String())
	}
	header := lines[0]
	if strings.Fields(header)[0] != "CHECK" || !strings.Contains(header, "STATUS") || !strings.HasSuffix(header, "FIX") {
		t.Errorf("header %q", header)
	}
	// Columns line up under the header, kubectl-style: each value starts where its title does.
	detail := strings.Index(header, "DETAIL")
	for _, l := range lines[1:] {
		if strings.HasSuffix(l, " ") {
			t.Errorf("trailing spaces: %q", l)
		}
		if l[detail-1] != ' ' || l[detail] == ' ' {
			t.Errorf("DETAIL not aligned at column %d: %q", detail, l)
		}
	}
	// A detail with a newline or a tab stays on its row, in its column.
	if want := "unavailable: NET_ADMIN forbidden"; !strings.Contains(lines[2], want) || !strings.HasSuffix(lines[2], "use a privileged namespace") {
		t.Errorf("warn row %q, want %q and its fix", lines[2], want)
	}
}

func TestDoctorJSONAndYAML(t *testing.T) {
	for _, format := range []string{"json", "yaml"} {
		t.Run(format, func(t *testing.T) {
			var out bytes.Buffer
			if err := newDoctorReport(sampleChecks).print(&out, format); err != nil {
				t.Fatal(err)
			}
			b := out.Bytes()
			if format == "yaml" {
				var err error
				if b, err = yaml.YAMLToJSON(b); err != nil {
					t.Fatal(err)
				}
			}
			// The field names and values tools rely on.
			var got struct {
				Ready  bool `json:"ready"`
				Checks []struct {
					Name, Status, Detail string
					Fix                  *string
				} `json:"checks"`
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("%v:\n%s", err, out.String())
			}
			if !got.Ready || len(got.Checks) != len(sampleChecks) {
				t.Fatalf("got %+v", got)
			}
			warn := got.Checks[1]
			if warn.Name != "steal/mirror" || warn.Status != "warn" || warn.Fix == nil || *warn.Fix != "use a privileged namespace" {
				t.Errorf("warn row %+v", warn)
			}
			if got.Checks[0].Fix != nil {
				t.Errorf("an ok row carries a fix field: %q", *got.Checks[0].Fix)
			}
		})
	}
	if err := newDoctorReport(sampleChecks).print(&bytes.Buffer{}, "wide"); err == nil {
		t.Errorf("an unknown format was accepted")
	}
}

func TestDoctorValidateOutput(t *testing.T) {
	for format, ok := range map[string]bool{"": true, "json": true, "yaml": true, "wide": false} {
		o := &DoctorOptions{Output: format}
		if err := o.Validate(); (err == nil) != ok {
			t.Errorf("-o %q: %v", format, err)
		}
	}
}
