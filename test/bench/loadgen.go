package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// loadgenArg makes this binary the HTTP load generator, run both under the layer and directly.
const loadgenArg = "loadgen"

// loadgen sends GETs to a URL from concurrent keep-alive clients for a while and prints
// "requests/s p50-ms p99-ms".
func loadgen(args []string) error {
	fs := flag.NewFlagSet(loadgenArg, flag.ContinueOnError)
	conc := fs.Int("c", 16, "concurrent clients")
	dur := fs.Duration("d", 5*time.Second, "duration")
	fresh := fs.Bool("new", false, "a new connection for each request (no keep-alive)")
	rate := fs.Int("rate", 0, "requests per second in all, paced; 0 sends each request as soon as the last is answered")
	var headers []http.Header
	fs.Func("header", `"Name: value" sent by every client, or with several, by each client in turn`, func(s string) error {
		name, value, ok := strings.Cut(s, ":")
		if !ok {
			return fmt.Errorf("header %q: want Name: value", s)
		}
		headers = append(headers, http.Header{strings.TrimSpace(name): {strings.TrimSpace(value)}})
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	url := fs.Arg(0)
	transport := &http.Transport{MaxIdleConnsPerHost: *conc, DisableKeepAlives: *fresh}
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	header := func(client int) http.Header {
		if len(headers) == 0 {
			return nil
		}
		return headers[client%len(headers)]
	}
	// One request first, so that DNS and connection set-up are outside the measurement.
	if err := get(client, url, header(0)); err != nil {
		return err
	}
	var mu sync.Mutex
	var lat []time.Duration
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, *conc)
	// turns paces the requests at -rate: each client takes a turn before it sends.
	var turns <-chan time.Time
	if *rate > 0 {
		tick := time.NewTicker(time.Second / time.Duration(*rate))
		defer tick.Stop()
		turns = tick.C
	}
	begin := time.Now()
	for i := range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for ctx.Err() == nil {
				if turns != nil {
					select {
					case <-turns:
					case <-ctx.Done():
						continue
					}
				}
				t := time.Now()
				if err := get(client, url, header(i)); err != nil {
					errs <- err
					return
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	took := time.Since(begin)
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	fmt.Printf("%.1f %.3f %.3f\n", float64(len(lat))/took.Seconds(), pct(0.50), pct(0.99))
	return nil
}

func get(client *http.Client, url string, header http.Header) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if header != nil {
		req.Header = header
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// layerHTTP measures an HTTP load from a program under exec to the echo Service, over each
// path, against the same load sent from the node straight to the pod IP (no layer, no link;
// the direct path's baseline) and through plain kubectl port-forward of the pod's port (the
// port-forward path's).
func (b *bench) layerHTTP(ctx context.Context, pod *corev1.Pod) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	direct, err := runLoad(exec.CommandContext(ctx, self, loadgenArg, "http://"+pod.Status.PodIP+":8080/"), nil)
	if err != nil {
		return fmt.Errorf("direct load: %w", err)
	}
	fw, err := b.plainPortForward(ctx, pod.Name, 8080)
	if err != nil {
		return fmt.Errorf("plain port-forward: %w", err)
	}
	plain, err := runLoad(exec.CommandContext(ctx, self, loadgenArg, "http://"+fw.addr+"/"), nil)
	fw.stop()
	if err != nil {
		return fmt.Errorf("load through plain port-forward: %w", err)
	}
	service := "http://echo." + namespace + ".svc.cluster.local/"
	layered := map[string][3]float64{}
	for _, transport := range []string{"direct", "port-forward"} {
		if layered[transport], err = runLoad(b.remocalExec(ctx, pod, transport, self, loadgenArg, service), nil); err != nil {
			return fmt.Errorf("load through the layer, %s path: %w", transport, err)
		}
	}
	for _, c := range []struct {
		name     string
		got      [3]float64
		base     [3]float64
		baseline string
	}{
		{"HTTP through the layer, direct", layered["direct"], direct, "node to pod IP, no layer"},
		{"HTTP through the layer, pf path", layered["port-forward"], plain, "plain kubectl port-forward, same pod port"},
		{"HTTP plain kubectl port-forward", plain, direct, "node to pod IP, no layer"},
	} {
		row(c.name+", 16 (req/s)", c.got[0], c.base[0], "req/s", c.baseline)
		row(c.name+" p50 (ms)", c.got[1], c.base[1], "ms", c.baseline)
		row(c.name+" p99 (ms)", c.got[2], c.base[2], "ms", c.baseline)
	}
	return nil
}

func runLoad(cmd *exec.Cmd, cpus *unix.CPUSet) ([3]float64, error) {
	var out [3]float64
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := startOn(cmd, cpus)
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		return out, fmt.Errorf("%w: %s%s", err, stdout.Bytes(), stderr.Bytes())
	}
	b := stdout.Bytes()
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	fields := strings.Fields(lines[len(lines)-1])
	if len(fields) != 3 {
		return out, fmt.Errorf("load generator said %q", b)
	}
	for i, f := range fields {
		if out[i], err = strconv.ParseFloat(f, 64); err != nil {
			return out, err
		}
	}
	return out, nil
}
