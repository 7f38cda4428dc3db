// Command remocal-bench measures kubectl remocal against the cluster named by KUBECONFIG (the
// local test cluster for `make bench`) and prints each figure beside the baseline it is judged
// against, measured in the same run: the machines are shared and noisy, so only ratios taken
// together mean something.
//
//	cold start       kubectl remocal exec pod/X -- true, with a new sidecar each time
//	                 vs kubectl debug adding an ephemeral container of the same image until Running
//	warm start       the same exec reusing the sidecar (median)
//	throughput       bytes echoed through one connection of kubectl remocal port-forward: the
//	                 port-forward path and the direct UDP path vs plain kubectl port-forward
//	exec-throughput  bytes echoed by a program under exec through the echo Service, each path,
//	                 vs plain kubectl port-forward and raw TCP to the pod IP, with the CPU
//	                 seconds of each process (the API server, kubelet and containerd included)
//	latency          one small request at a time, on a kept connection and on new ones, p50
//	connect          new connections per second, 16 in flight, from a single-threaded client
//	layer            HTTP through the layer, 16 keep-alive clients, each path
//	                 vs the node to the pod IP and plain kubectl port-forward
//	incoming         HTTP to the pod's port, stolen or mirrored, vs the app answering directly
//	                 and (the stolen port-forward path's baseline) through kubectl port-forward
//	mirror           what a mirror adds to the app's own latency, below saturation
//	files            open+read+close of the pod's files (4 KiB, 1 MiB, 1,000 small ones in a row)
//	                 vs the same reads of local files by the same program under the layer
//	memory           the sidecar's RSS idle and with 100 concurrent streams (read from /proc on the
//	                 node, so only against a local cluster)
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const namespace = "remocal-bench"

type bench struct {
	client     kubernetes.Interface
	kubeconfig string
	plugin     string
	image      string
	testapp    string
	runs       int
	size       int64
	only       string
	work       string
}

func main() {
	if len(os.Args) > 1 {
		if mode, ok := modes()[os.Args[1]]; ok {
			if err := mode(os.Args[2:]); err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[1], err)
				os.Exit(1)
			}
			return
		}
	}
	b := &bench{}
	flag.StringVar(&b.plugin, "plugin", "bin/kubectl-remocal", "path of the plugin binary")
	flag.StringVar(&b.image, "sidecar-image", "", "sidecar image (default: the plugin's default)")
	flag.StringVar(&b.testapp, "testapp-image", "remocal.local/testapp:e2e", "image of the echo workload")
	flag.IntVar(&b.runs, "runs", 5, "repetitions of each start measurement")
	flag.Int64Var(&b.size, "bytes", 256<<20, "bytes per throughput measurement")
	flag.StringVar(&b.only, "only", "", "run only these sections, comma-separated: start, throughput, exec-throughput, latency, connect, layer, incoming, team, mirror, files, memory")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if err := b.run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "remocal-bench: %v\n", err)
		os.Exit(1)
	}
}

// modes are what this binary is when its first argument names one: the programs the
// sections run, under the layer and directly.
func modes() map[string]func(args []string) error {
	return map[string]func([]string) error{
		serveArg: func(args []string) error {
			if len(args) != 1 {
				return errors.New("usage: serve ADDR")
			}
			return serve(args[0])
		},
		filesArg:   filesMain,
		loadgenArg: loadgen,
		pingsArg:   pings,
		streamArg:  stream,
	}
}

func (b *bench) run(ctx context.Context) error {
	b.kubeconfig = os.Getenv("KUBECONFIG")
	if b.kubeconfig == "" {
		return errors.New("set KUBECONFIG (make bench does)")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", b.kubeconfig)
	if err != nil {
		return err
	}
	if b.client, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	if b.plugin, err = filepath.Abs(b.plugin); err != nil {
		return err
	}
	if b.work, err = os.MkdirTemp("", "remocal-bench"); err != nil {
		return err
	}
	defer os.RemoveAll(b.work)
	if b.image == "" {
		out, err := exec.CommandContext(ctx, b.plugin, "exec", "--help").Output()
		if err != nil {
			return err
		}
		b.image = defaultImage(string(out))
	}
	pod, err := b.deployEcho(ctx)
	if err != nil {
		return err
	}
	defer func() {
		_ = b.client.CoreV1().Namespaces().Delete(context.Background(), namespace, metav1.DeleteOptions{})
	}()

	fmt.Printf("kubectl remocal benchmarks (pod %s/%s, sidecar image %s)\n\n", namespace, pod.Name, b.image)
	fmt.Printf("%-44s %14s %14s %8s  %s\n", "measurement", "remocal", "baseline", "ratio", "baseline is")
	sections := []struct {
		name string
		run  func(context.Context, *corev1.Pod) error
	}{
		{"start", b.startTimes},
		{"throughput", b.throughput},
		{"exec-throughput", b.execThroughput},
		{"latency", b.latency},
		{"connect", b.connect},
		{"layer", b.layerHTTP},
		{"incoming", b.incomingHTTP},
		{"team", b.teamHTTP},
		{"mirror", b.mirrorLatency},
		{"files", b.remoteFiles},
		{"memory", b.memory},
	}
	for _, sec := range sections {
		if b.only != "" && !slices.Contains(strings.Split(b.only, ","), sec.name) {
			continue
		}
		if err := sec.run(ctx, pod); err != nil {
			return fmt.Errorf("%s: %w", sec.name, err)
		}
	}
	return nil
}

func row(name string, value, baseline float64, unit, what string) {
	ratio := ""
	if baseline > 0 {
		ratio = fmt.Sprintf("%.2fx", value/baseline)
	}
	base := "-"
	if baseline > 0 {
		base = fmt.Sprintf("%.2f %s", baseline, unit)
	}
	fmt.Printf("%-44s %14s %14s %8s  %s\n", name, fmt.Sprintf("%.2f %s", value, unit), base, ratio, what)
}

// startTimes measures cold starts (a new client key each run, so a new sidecar) against kubectl
// debug adding the same image, then warm starts (one key, the sidecar reused).
func (b *bench) startTimes(ctx context.Context, pod *corev1.Pod) error {
	var cold, debug, warm []float64
	for i := range b.runs {
		home := filepath.Join(b.work, fmt.Sprintf("cold-%d", i))
		d, err := b.timeExec(ctx, home, pod)
		if err != nil {
			return err
		}
		cold = append(cold, d)
		if d, err = b.timeDebug(ctx, pod, i); err != nil {
			return err
		}
		debug = append(debug, d)
	}
	warmHome := filepath.Join(b.work, "cold-0")
	for range b.runs {
		d, err := b.timeExec(ctx, warmHome, pod)
		if err != nil {
			return err
		}
		warm = append(warm, d)
	}
	row("cold start, median (s)", median(cold), median(debug), "s", "kubectl debug, same image, to Running")
	row("warm start, median (s)", median(warm), median(cold), "s", "remocal cold start")
	return nil
}

func (b *bench) timeExec(ctx context.Context, configHome string, pod *corev1.Pod) (float64, error) {
	cmd := exec.CommandContext(ctx, b.plugin, "-n", namespace, "exec", "pod/"+pod.Name, "--sidecar-image", b.image, "--", "true")
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+configHome)
	begin := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("exec: %w: %s", err, out)
	}
	return time.Since(begin).Seconds(), nil
}

// remocalExec is `kubectl remocal exec` of argv in the bench pod over transport ("" for the
// plugin's default), with the client key of the start section's first cold start, so that the
// sections reuse its sidecars.
func (b *bench) remocalExec(ctx context.Context, pod *corev1.Pod, transport string, argv ...string) *exec.Cmd {
	args := []string{"-n", namespace, "exec", "pod/" + pod.Name, "--sidecar-image", b.image}
	if transport != "" {
		args = append(args, "--transport", transport)
	}
	cmd := exec.CommandContext(ctx, b.plugin, append(append(args, "--"), argv...)...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+filepath.Join(b.work, "cold-0"))
	return cmd
}

// timeDebug runs kubectl debug with the sidecar image (kept running by its TTL) and waits until
// the container runs, as the plugin does before it connects.
func (b *bench) timeDebug(ctx context.Context, pod *corev1.Pod, i int) (float64, error) {
	name := fmt.Sprintf("debug-bench-%d", i)
	begin := time.Now()
	cmd := exec.CommandContext(ctx, "kubectl", "--kubeconfig", b.kubeconfig, "-n", namespace, "debug", "pod/"+pod.Name,
		"--image", b.image, "--image-pull-policy", "IfNotPresent", "--target", "http", "-c", name, "--attach=false", "--quiet",
		"--", "/remocal-sidecar", "--client-pin=sha256:"+strings.Repeat("0", 64), "--port="+strconv.Itoa(50000+i), "--ttl=30s")
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("kubectl debug: %w: %s", err, out)
	}
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := b.client.CoreV1().Pods(namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, s := range p.Status.EphemeralContainerStatuses {
			if s.Name == name && s.State.Running != nil {
				return true, nil
			}
		}
		return false, nil
	})
	return time.Since(begin).Seconds(), err
}

// throughput echoes b.size bytes through one connection each way: the pod's TCP echo server at
// 127.0.0.1:9000 in its own network namespace.
func (b *bench) throughput(ctx context.Context, pod *corev1.Pod) error {
	home := filepath.Join(b.work, "cold-0")
	plain, err := b.echoVia(ctx, []string{"kubectl", "--kubeconfig", b.kubeconfig, "-n", namespace, "port-forward", "pod/" + pod.Name, "0:9000"}, nil)
	if err != nil {
		return fmt.Errorf("plain port-forward: %w", err)
	}
	remocal := func(transport string) []string {
		return []string{b.plugin, "-n", namespace, "port-forward", "pod/" + pod.Name, "--sidecar-image", b.image, "--transport", transport, "-L", "0:127.0.0.1:9000"}
	}
	env := []string{"XDG_CONFIG_HOME=" + home}
	pf, err := b.echoVia(ctx, remocal("port-forward"), env)
	if err != nil {
		return fmt.Errorf("remocal port-forward path: %w", err)
	}
	direct, err := b.echoVia(ctx, remocal("direct"), env)
	if err != nil {
		return fmt.Errorf("remocal direct path: %w", err)
	}
	label := fmt.Sprintf("%d MiB echoed", b.size>>20)
	row("throughput, port-forward path (MiB/s) "+label, pf, plain, "MiB/s", "plain kubectl port-forward, same pod port")
	row("throughput, direct UDP path (MiB/s)", direct, plain, "MiB/s", "plain kubectl port-forward, same pod port")
	return nil
}

// echoVia starts a forwarder command (see startForwarder) and echoes b.size bytes through it.
// It returns MiB/s of payload (one direction).
func (b *bench) echoVia(ctx context.Context, argv, env []string) (float64, error) {
	fw, err := startForwarder(ctx, argv, env)
	if err != nil {
		return 0, err
	}
	defer fw.stop()
	addr := fw.addr
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	begin := time.Now()
	errc := make(chan error, 1)
	go func() {
		_, err := io.Copy(conn, io.LimitReader(rand.Reader, b.size))
		errc <- err
	}()
	if _, err := io.CopyN(io.Discard, conn, b.size); err != nil {
		return 0, err
	}
	if err := <-errc; err != nil {
		return 0, err
	}
	return float64(b.size) / (1 << 20) / time.Since(begin).Seconds(), nil
}

// memory reads the sidecar's RSS idle and while 100 connections stream through it.
func (b *bench) memory(ctx context.Context, pod *corev1.Pod) error {
	// A key of its own: a new sidecar, the newest in the pod, which sidecarPID finds.
	home := filepath.Join(b.work, "memory")
	fw, err := startForwarder(ctx, []string{b.plugin, "-n", namespace, "port-forward", "pod/" + pod.Name, "--sidecar-image", b.image, "--transport", "direct", "-L", "0:127.0.0.1:9000"},
		[]string{"XDG_CONFIG_HOME=" + home})
	if err != nil {
		return err
	}
	defer fw.stop()
	addr := fw.addr
	pid, err := sidecarPID(ctx, b.client, pod)
	if err != nil {
		fmt.Printf("%-44s %14s\n", "sidecar RSS", "n/a: "+err.Error())
		return nil
	}
	idle, err := rssMiB(pid)
	if err != nil {
		return err
	}
	// 100 concurrent streams, each echoing continuously while RSS is read.
	var wg sync.WaitGroup
	var moved atomic.Int64
	stop := make(chan struct{})
	for range 100 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			buf := make([]byte, 16<<10)
			for {
				select {
				case <-stop:
					conn.Close()
					return
				default:
				}
				if _, err := conn.Write(buf); err != nil {
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			n, _ := io.Copy(io.Discard, conn)
			moved.Add(n)
		}()
	}
	// The peak over a few seconds of load, sampled.
	busy := idle
	for range 30 {
		time.Sleep(100 * time.Millisecond)
		rss, err := rssMiB(pid)
		if err != nil {
			return err
		}
		busy = max(busy, rss)
	}
	close(stop)
	wg.Wait()
	fmt.Fprintf(os.Stderr, "sidecar pid %d\n", pid)
	row("sidecar RSS, idle (MiB)", idle, 30, "MiB", "target: under 30 MiB")
	row("sidecar RSS, 100 concurrent streams (MiB)", busy, idle, "MiB", fmt.Sprintf("sidecar idle (the streams echoed %d MiB)", moved.Load()>>20))
	return nil
}

// sidecarPID finds, on this node, the process of the newest running remocal sidecar in pod.
func sidecarPID(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod) (int, error) {
	p, err := client.CoreV1().Pods(namespace).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		return 0, err
	}
	// The newest running sidecar by start time: the spec's list order is not creation order
	// after strategic merge patches.
	id := ""
	var newest time.Time
	for _, s := range p.Status.EphemeralContainerStatuses {
		if strings.HasPrefix(s.Name, "remocal-") && s.State.Running != nil && !s.State.Running.StartedAt.Time.Before(newest) {
			id, newest = s.ContainerID, s.State.Running.StartedAt.Time
		}
	}
	_, id, _ = strings.Cut(id, "://")
	if id == "" {
		return 0, errors.New("no running remocal sidecar")
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if err == nil && strings.Contains(string(cg), id) {
			// The worker, which serves the streams; its parent, the guard, only waits for it.
			if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(cmdline), "\x00--worker") {
				return pid, nil
			}
		}
	}
	return 0, errors.New("the sidecar's process is not on this machine (not a local cluster?)")
}

func rssMiB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.Fields(rest)[0])
			return float64(kb) / 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

func (b *bench) deployEcho(ctx context.Context) (*corev1.Pod, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if _, err := b.client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	labels := map[string]string{"app": "echo"}
	one := int32(1)
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "echo"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: new(int64),
					Volumes:                       []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
					Containers: []corev1.Container{
						{Name: "http", Image: b.testapp, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"/testapp", "http", "-addr", ":8080"},
							VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: benchDataDir}}},
						{Name: "tcp", Image: b.testapp, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"/testapp", "tcp", "-addr", ":9000"}},
					},
				},
			},
		},
	}
	if _, err := b.client.AppsV1().Deployments(namespace).Create(ctx, deploy, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echo"},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)},
			{Name: "tcp", Port: 9000, TargetPort: intstr.FromInt32(9000)},
		}},
	}
	if _, err := b.client.CoreV1().Services(namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	var ready *corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := b.client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=echo"})
		if err != nil {
			return false, err
		}
		for i := range pods.Items {
			if pods.Items[i].Status.Phase == corev1.PodRunning && pods.Items[i].DeletionTimestamp == nil {
				ready = &pods.Items[i]
				return true, nil
			}
		}
		return false, nil
	})
	return ready, err
}

// defaultImage reads the --sidecar-image default from the plugin's help, so the bench uses
// exactly the image the plugin would.
func defaultImage(help string) string {
	for _, line := range strings.Split(help, "\n") {
		if strings.Contains(line, "--sidecar-image") {
			if i := strings.Index(line, `(default "`); i >= 0 {
				return strings.TrimSuffix(line[i+len(`(default "`):], `")`)
			}
		}
	}
	return ""
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
