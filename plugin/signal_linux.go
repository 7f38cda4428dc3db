package plugin

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// passSignal gives the program a signal the plugin received. SIGINT and SIGQUIT are what a
// terminal sends to its whole foreground process group on Ctrl-C and Ctrl-\, and some parents
// rely on that: `go run` ignores both and leaves its child to get them from the terminal. So
// these two go to the program and to each of its descendants in its process group, as the
// terminal would send them; other signals go to the program alone, as kill(1) would.
func passSignal(p *os.Process, sig os.Signal) {
	_ = p.Signal(sig)
	if sig != syscall.SIGINT && sig != syscall.SIGQUIT {
		return
	}
	group, err := syscall.Getpgid(p.Pid)
	if err != nil {
		return
	}
	for _, pid := range descendants(p.Pid) {
		if g, err := syscall.Getpgid(pid); err == nil && g == group {
			_ = syscall.Kill(pid, sig.(syscall.Signal))
		}
	}
}

// descendants lists the processes below pid, from the kernel's children lists of each thread.
func descendants(pid int) []int {
	var found []int
	queue := []int{pid}
	for len(queue) > 0 {
		parent := queue[0]
		queue = queue[1:]
		lists, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", parent))
		for _, list := range lists {
			b, err := os.ReadFile(list)
			if err != nil {
				continue
			}
			for _, field := range strings.Fields(string(b)) {
				if child, err := strconv.Atoi(field); err == nil {
					found = append(found, child)
					queue = append(queue, child)
				}
			}
		}
	}
	return found
}
