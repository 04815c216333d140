package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openPTY opens a pseudo-terminal pair with the plain Linux ioctls.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		m.Close()
		t.Skipf("unlocking the pseudo-terminal: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		m.Close()
		t.Skipf("pseudo-terminal number: %v", e)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("opening the pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// onTerminal runs kreide with a terminal as standard input, output and error,
// answering each prompt (a text that ends the output so far) in turn.
func onTerminal(t *testing.T, answers [][2]string, args ...string) (string, int) {
	t.Helper()
	master, slave := openPTY(t)
	cmd := exec.Command(kreideBin, args...)
	cmd.Dir = t.TempDir()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var mu sync.Mutex
	var out bytes.Buffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	output := func() string {
		mu.Lock()
		defer mu.Unlock()
		return out.String()
	}
	for _, a := range answers {
		deadline := time.Now().Add(30 * time.Second)
		for !strings.HasSuffix(strings.TrimRight(output(), " "), strings.TrimRight(a[0], " ")) {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("kreide %s: no prompt %q; output so far:\n%s", strings.Join(args, " "), a[0], output())
			}
			time.Sleep(10 * time.Millisecond)
		}
		master.Write([]byte(a[1] + "\n"))
	}
	err := cmd.Wait()
	time.Sleep(50 * time.Millisecond) // the last output
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return output(), code
}

func TestTerminalPrompts(t *testing.T) {
	cfg, dataDir := writeConfig(t, "")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	c := []string{"-config", cfg}

	out, code := onTerminal(t, [][2]string{{"Password for anna@school.test: ", "password one"}, {"Type it again: ", "password one"}},
		append([]string{"user", "add", "anna@school.test"}, c...)...)
	if code != 0 || !strings.Contains(out, "Recovery code: ") || strings.Contains(out, "password one") {
		t.Fatalf("user add on a terminal: exit %d, output (the password must not be echoed):\n%s", code, out)
	}

	out, code = onTerminal(t, [][2]string{{"Password for bob@school.test: ", "password one"}, {"Type it again: ", "password two"}},
		append([]string{"user", "add", "bob@school.test"}, c...)...)
	if code != 1 || !strings.Contains(out, "the two passwords differ") {
		t.Fatalf("user add with two different passwords: exit %d:\n%s", code, out)
	}

	out, code = onTerminal(t, [][2]string{{"for ever? [y/N] ", "n"}}, append([]string{"user", "delete", "anna@school.test"}, c...)...)
	if code != 1 || !strings.Contains(out, "not deleted") {
		t.Fatalf("user delete answered n: exit %d:\n%s", code, out)
	}
	out, code = onTerminal(t, [][2]string{{"for ever? [y/N] ", "y"}}, append([]string{"user", "delete", "anna@school.test"}, c...)...)
	if code != 0 || !strings.Contains(out, "Deleted anna@school.test") {
		t.Fatalf("user delete answered y: exit %d:\n%s", code, out)
	}
}
