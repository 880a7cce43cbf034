// Package e2e runs the coordinator and workers as separate OS processes on
// 127.0.0.1, the way an operator runs them, and checks what they produce.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// binDir holds the binaries built once for all tests.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ringtrain-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, name := range []string{"coordinator", "worker"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), "github.com/ringtrain/ringtrain/cmd/"+name)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", name, err)
			os.Exit(1)
		}
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running process whose JSON log lines are collected.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs []map[string]any
	raw  strings.Builder
	done chan struct{}
	err  error
}

// start runs a binary with args; its stderr (JSON logs) is parsed line by line.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, done: make(chan struct{})}
	if len(args) > 0 && strings.HasPrefix(args[0], "-") {
		// The shared-memory segments go under the tests' folder, which
		// TestMain removes: a killed worker's are not left in /dev/shm.
		args = append(args, "--ring-shm-dir", filepath.Join(binDir, "shm"))
	}
	p.cmd = exec.Command(filepath.Join(binDir, name), args...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			var m map[string]any
			p.mu.Lock()
			p.raw.WriteString(line + "\n")
			if json.Unmarshal([]byte(line), &m) == nil {
				p.logs = append(p.logs, m)
			}
			p.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stderr)
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", name, p.output())
		}
	})
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.raw.String()
}

// waitLog polls the process's logs until one with msg satisfies match, or
// the deadline passes.
func (p *proc) waitLog(t *testing.T, timeout time.Duration, msg string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p.mu.Lock()
		for _, l := range p.logs {
			if l["msg"] == msg && (match == nil || match(l)) {
				p.mu.Unlock()
				return l
			}
		}
		p.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("%s: no log line %q within %v", p.name, msg, timeout)
		}
		select {
		case <-p.done:
			// Look once more: the line may have arrived with the exit.
			if time.Now().After(deadline.Add(-timeout + 10*time.Millisecond)) {
				deadline = time.Now()
			}
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %v", p.name, timeout)
	}
	if p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// startCoordinator runs a coordinator on loopback ports chosen by the kernel
// and returns it with its gossip address.
func startCoordinator(t *testing.T, args ...string) (*proc, string) {
	t.Helper()
	base := []string{"--grpc-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0", "--gossip-fast", "--log-format", "json"}
	c := start(t, "coordinator", append(base, args...)...)
	l := c.waitLog(t, 60*time.Second, "coordinator started", nil)
	return c, l["gossip_addr"].(string)
}

func startWorker(t *testing.T, join string, args ...string) *proc {
	t.Helper()
	base := []string{"--join", join, "--grpc-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0", "--gossip-fast", "--log-format", "json"}
	return start(t, "worker", append(base, args...)...)
}

func context30s(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// isDone reports whether the process has exited.
func isDone(p *proc) bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// count returns how many log lines carry msg.
func (p *proc) count(msg string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.logs {
		if l["msg"] == msg {
			n++
		}
	}
	return n
}

// maxField returns the largest numeric value of field over the lines with msg.
func (p *proc) maxField(msg, field string) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := 0.0
	for _, l := range p.logs {
		if v, ok := l[field].(float64); ok && l["msg"] == msg && v > m {
			m = v
		}
	}
	return m
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago (the
// gossip port of a coordinator that must keep its address across a restart).
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}
