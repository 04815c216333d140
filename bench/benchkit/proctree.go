package benchkit

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Servers like Dovecot and Postfix are many processes that come and go (one
// imap process per connection, smtpd, cleanup, lmtp...), so their memory is
// the sum over the whole process tree, read afresh at every sample.

// TreeRSS samples the summed memory of a process and all of its descendants
// until Stop, and keeps the peaks.
type TreeRSS struct {
	root int
	stop chan struct{}
	done chan struct{}
	peak TreePeak
}

// TreePeak is what TreeRSS saw, each figure the highest of its samples.
type TreePeak struct {
	// RSS is the summed resident set size, which counts pages shared
	// between the processes (libraries, a mapped file) once per process:
	// it overstates a many-process server.
	RSS int64
	// PSS is the summed proportional set size: shared pages split between
	// their users (0 where the kernel does not report it).
	PSS int64
	// Anon is the summed anonymous memory (RssAnon: heaps, stacks), without
	// mapped files, which the kernel can drop and read again.
	Anon int64
	// Procs is the largest number of processes seen at once.
	Procs int
}

// WatchTreeRSS starts sampling the process tree under root (root included)
// every 100 ms.
func WatchTreeRSS(root int) *TreeRSS {
	t := &TreeRSS{root: root, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(t.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			pids := ProcessTree(t.root)
			var s TreePeak
			for _, p := range pids {
				s.RSS += ProcessRSS(p)
				s.PSS += ProcessPSS(p)
				s.Anon += processStatus(p, "RssAnon:")
			}
			t.peak.RSS = max(t.peak.RSS, s.RSS)
			t.peak.PSS = max(t.peak.PSS, s.PSS)
			t.peak.Anon = max(t.peak.Anon, s.Anon)
			t.peak.Procs = max(t.peak.Procs, len(pids))
			select {
			case <-t.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return t
}

// Stop ends sampling and returns the peaks.
func (t *TreeRSS) Stop() TreePeak {
	close(t.stop)
	<-t.done
	return t.peak
}

// processStatus reads a size field ("RssAnon:") of /proc/PID/status in
// bytes (0 if unknown).
func processStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// ProcessTree returns root and every process descending from it, read from
// /proc (root alone if /proc cannot be listed).
func ProcessTree(root int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []int{root}
	}
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp := parentPID(pid); pp > 0 {
			children[pp] = append(children[pp], pid)
		}
	}
	tree := []int{root}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree
}

// parentPID reads the parent's pid from /proc/PID/stat (0 if unknown). The
// command name in parentheses may contain spaces, so fields are counted
// after its closing parenthesis.
func parentPID(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	pp, _ := strconv.Atoi(f[1])
	return pp
}

// ProcessPSS reads the proportional set size of a process from
// /proc/PID/smaps_rollup (0 if unknown).
func ProcessPSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Pss:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}
