// Command layerclient is run by the e2e tests under `kubectl remocal exec`: each mode exercises
// one thing the layer must carry through the pod, and prints what it saw on stdout.
//
//	layerclient get URL             GET, print the body
//	layerclient udp HOST:PORT MSG   one datagram over a connected UDP socket, print the echo
//	layerclient connect HOST:PORT   print "connected" or the errno's name
//	layerclient many HOST:PORT N    N concurrent TCP echo round trips, print "all ok"
//	layerclient fds HOST:PORT N     N sequential connections; print the parent's open
//	                                descriptors before and after, for a leak check
//	layerclient loop HOST:PORT      print the pid, then connect every 200 ms until killed
//	layerclient poll URL [ADDR]     print the pid, then GET URL every 200 ms on a new connection
//	                                until killed, printing "poll ok HOSTNAME" (the echo app's
//	                                answer names its pod; "ok local" from a local server) or
//	                                "poll error ERR"; with ADDR, serve
//	                                on it as serve does meanwhile, in the same process
//	layerclient stream HOST:PORT MIB  one connection to an echo server: send MIB MiB of random
//	                                bytes while reading the echo, print "received N MiB" every
//	                                16 MiB, then the sha256 of both directions and "connection
//	                                never closed" (any read or write error is fatal instead)
//	layerclient manyfds HOST:PORT N print "ready" and wait for a line on stdin; N concurrent
//	                                echo round trips; wait (10 s at most) until the parent holds
//	                                no more descriptors than before, print "plugin fds before B
//	                                after A"; wait for a line on stdin again
//	layerclient read PATH...        print "PATH: content" (quoted), or "PATH: ENAME" for each
//	layerclient ls DIR              print the names in DIR, sorted, dot-files included
//	layerclient watch FILE          watch FILE with inotify (through symlinks), print "watching";
//	                                at its first event print the content read again, quoted
//	layerclient seccomp -           print the seccomp mode of this process and of its parent
//	layerclient serve ADDR          serve HTTP on ADDR: print "request METHOD PATH" for each
//	                                request, answer a POST with its body and others with
//	                                "local <path> from <client>"; GET /read/PATH answers
//	                                "local read " and PATH's content (quoted) or errno's name;
//	                                GET /close-listener closes the listener, prints "closed"
//	                                and waits to be killed
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return errors.New("usage: layerclient MODE ARGS")
	}
	switch args[0] {
	case "read":
		for _, p := range args[1:] {
			b, err := os.ReadFile(p)
			fmt.Printf("%s: %s\n", p, contentOrErrno(b, err))
		}
	case "watch":
		return watch(args[1])
	case "ls":
		entries, err := os.ReadDir(args[1])
		if err != nil {
			return err
		}
		for _, e := range entries {
			fmt.Println(e.Name())
		}
	case "get":
		client := &http.Client{Timeout: 10 * time.Second}
		resp, err := client.Get(args[1])
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.Copy(os.Stdout, resp.Body)
		return err
	case "udp":
		conn, err := net.Dial("udp", args[1])
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte(args[2])); err != nil {
			return err
		}
		buf := make([]byte, 1500)
		n, err := conn.Read(buf)
		if err != nil {
			return err
		}
		fmt.Printf("udp reply: %s\n", buf[:n])
	case "connect":
		conn, err := net.DialTimeout("tcp", args[1], 10*time.Second)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				fmt.Println("ECONNREFUSED")
				return nil
			}
			return err
		}
		defer conn.Close()
		fmt.Println("connected", conn.RemoteAddr())
		line, _ := bufio.NewReader(conn).ReadString('\n')
		fmt.Print(line)
	case "many":
		n, _ := strconv.Atoi(args[2])
		return many(args[1], n)
	case "fds":
		n, _ := strconv.Atoi(args[2])
		before := parentFDs()
		for i := range n {
			if err := echoOnce(args[1], fmt.Sprintf("fd%d\n", i)); err != nil {
				return err
			}
		}
		time.Sleep(2 * time.Second)
		fmt.Printf("fds before %d after %d\n", before, parentFDs())
	case "loop":
		fmt.Println("pid", os.Getpid())
		for {
			if conn, err := net.DialTimeout("tcp", args[1], time.Second); err == nil {
				conn.Close()
			}
			time.Sleep(200 * time.Millisecond)
		}
	case "poll":
		fmt.Println("pid", os.Getpid())
		if len(args) > 2 {
			go func() {
				if err := serve(args[2]); err != nil {
					fmt.Println("error:", err)
					os.Exit(1)
				}
			}()
		}
		client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		for {
			fmt.Println("poll", pollOnce(client, args[1]))
			time.Sleep(200 * time.Millisecond)
		}
	case "serve":
		return serve(args[1])
	case "stream":
		mib, _ := strconv.Atoi(args[2])
		return stream(args[1], int64(mib)<<20)
	case "manyfds":
		n, _ := strconv.Atoi(args[2])
		return manyFDs(args[1], n)
	case "seccomp":
		fmt.Printf("self %s parent %s\n", seccompMode("self"), seccompMode(strconv.Itoa(os.Getppid())))
	default:
		return fmt.Errorf("unknown mode %q", args[0])
	}
	return nil
}

func serve(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println("listening on", ln.Addr())
	var printMu sync.Mutex
	closing := make(chan struct{})
	var closeOnce sync.Once
	srv := &http.Server{Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true) // h2c with prior knowledge, as gRPC speaks it
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		printMu.Lock()
		fmt.Printf("request %s %s\n", r.Method, r.URL.Path)
		printMu.Unlock()
		switch {
		case r.Method == http.MethodPost:
			// Read it all first: an HTTP/1 handler's first write ends its reading of the body.
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			_, _ = w.Write(body)
		case strings.HasPrefix(r.URL.Path, "/read/"):
			b, err := os.ReadFile(strings.TrimPrefix(r.URL.Path, "/read"))
			fmt.Fprintf(w, "local read %s\n", contentOrErrno(b, err))
		case r.URL.Path == "/close-listener":
			fmt.Fprintln(w, "closing")
			closeOnce.Do(func() { close(closing); ln.Close() })
		default:
			fmt.Fprintf(w, "local %s from %s\n", r.URL.Path, r.RemoteAddr)
		}
	})
	err = srv.Serve(ln)
	select {
	case <-closing:
		fmt.Println("closed")
		time.Sleep(time.Hour) // the process lives on without its listener
		return nil
	default:
		return err
	}
}

func many(addr string, n int) error {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := echoOnce(addr, fmt.Sprintf("conn %d\n", i)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	fmt.Println("all ok")
	return nil
}

func echoOnce(addr, msg string) error {
	conn, err := net.DialTimeout("tcp", addr, 20*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, msg); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != msg {
		return fmt.Errorf("echo %q, want %q", line, msg)
	}
	return nil
}

// parentFDs counts the open descriptors of the parent: the plugin, whose supervisor must not
// keep any per connection.
func parentFDs() int {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", os.Getppid()))
	if err != nil {
		return -1
	}
	return len(entries)
}

// seccompMode reads the Seccomp line of /proc/PID/status: 0 none, 2 filter.
func seccompMode(pid string) string {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Seccomp:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// contentOrErrno is what the read mode prints: the content quoted, or the errno's name.
func contentOrErrno(b []byte, err error) string {
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno):
		return errnoName(errno)
	case err != nil:
		return err.Error()
	}
	return strconv.Quote(string(b))
}

func errnoName(errno syscall.Errno) string {
	switch errno {
	case syscall.ENOENT:
		return "ENOENT"
	case syscall.EACCES:
		return "EACCES"
	case syscall.EISDIR:
		return "EISDIR"
	case syscall.ENOTDIR:
		return "ENOTDIR"
	case syscall.EFBIG:
		return "EFBIG"
	case syscall.EROFS:
		return "EROFS"
	}
	return errno.Error()
}

// watch is what a program that reloads its configuration does: an inotify watch on the file,
// then a read when it changes or goes (a ConfigMap update replaces it).
func watch(path string) error {
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	if _, err := syscall.InotifyAddWatch(fd, path, syscall.IN_MODIFY|syscall.IN_ATTRIB|syscall.IN_DELETE_SELF|syscall.IN_MOVE_SELF); err != nil {
		return err
	}
	fmt.Println("watching")
	buf := make([]byte, 4096)
	if _, err := syscall.Read(fd, buf); err != nil {
		return err
	}
	b, err := os.ReadFile(path)
	fmt.Println(contentOrErrno(b, err))
	return nil
}

// pollOnce GETs url and says "ok HOSTNAME" from the echo app's JSON answer, "ok local" from
// a local server (the Service's port may be stolen by the program itself), or "error ERR".
func pollOnce(client *http.Client, url string) string {
	resp, err := client.Get(url)
	if err != nil {
		return "error " + err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "error " + err.Error()
	}
	if strings.HasPrefix(string(body), "local ") {
		return "ok local"
	}
	var reply struct {
		Hostname string `json:"hostname"`
	}
	if err := json.Unmarshal(body, &reply); err != nil {
		return "error " + err.Error()
	}
	return "ok " + reply.Hostname
}
