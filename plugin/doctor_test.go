package plugin

import (
	"strings"
	"testing"
)

func TestDoctorCommandLine(t *testing.T) {
	stdout, _, err := execute(t, "doctor", "--help")
	if err != nil {
		t.Fatal(err)
	}
	// Tools read the exit code and -o json; users read what each status means.
	for _, want := range []string{"kubectl remocal doctor [TYPE/NAME]", "--output", "--sidecar-image", "exit code is 0 when no check", "and 1 otherwise", "warn (exec works"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("doctor --help lacks %q:\n%s", want, stdout)
		}
	}
	for args, want := range map[string]string{
		"doctor -o xml":                            `--output must be 'json' or 'yaml', not "xml" (see 'kubectl remocal doctor --help')`,
		"doctor pod/a pod/b":                       "accepts at most 1 arg(s), received 2",
		"doctor pod/a --ttl=0s":                    "--start-timeout, --ttl and --max-lifetime must be positive",
		"doctor pod/a --transport udp":             `--transport must be auto, direct or port-forward, not "udp"`,
		"doctor pod/a --debug-direct-ip-family v6": `--debug-direct-ip-family must be IPv4 or IPv6, not "v6"`,
	} {
		_, _, err := execute(t, strings.Fields(args)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", args, err, want)
		}
	}
}
