package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// rssMonitor samples VmRSS of the replicas every 20 ms and keeps, per phase, the peak
// growth over the RSS at the start of the run.
type rssMonitor struct {
	pids []int
	mu   sync.Mutex
	base []float64 // MiB at start
	peak []float64 // MiB, peak since the last mark
	gone []bool
	done chan struct{}
	wg   sync.WaitGroup
}

func startRSS(pids []int) *rssMonitor {
	m := &rssMonitor{pids: pids, base: make([]float64, len(pids)), peak: make([]float64, len(pids)),
		gone: make([]bool, len(pids)), done: make(chan struct{})}
	for i, p := range pids {
		m.base[i] = rssMiB(p)
		m.peak[i] = m.base[i]
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-m.done:
				return
			case <-t.C:
			}
			m.mu.Lock()
			for i, p := range m.pids {
				if !m.gone[i] {
					m.peak[i] = max(m.peak[i], rssMiB(p))
				}
			}
			m.mu.Unlock()
		}
	}()
	return m
}

// mark returns the base RSS and the peak growth since the previous mark, and starts a
// new phase.
func (m *rssMonitor) mark() (base, growth []float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.pids {
		base = append(base, round1(m.base[i]))
		growth = append(growth, round1(m.peak[i]-m.base[i]))
		m.peak[i] = m.base[i]
	}
	return base, growth
}

func (m *rssMonitor) drop(i int) {
	m.mu.Lock()
	m.gone[i] = true
	m.mu.Unlock()
}

func (m *rssMonitor) stop() { close(m.done); m.wg.Wait() }

func rssMiB(pid int) float64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
			return kb / 1024
		}
	}
	return 0
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

func killPID(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("killing %d: %w", pid, err)
	}
	return nil
}

// redisDo sends one RESP command and returns the first reply line.
func redisDo(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

// table prints the median and the individual runs of every figure, per label.
func table(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: benchbatch table FILE.jsonl")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	byLabel := map[string][]map[string]any{}
	var labels []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			continue
		}
		l, _ := m["label"].(string)
		if _, ok := byLabel[l]; !ok {
			labels = append(labels, l)
		}
		byLabel[l] = append(byLabel[l], m)
	}
	for _, l := range labels {
		runs := byLabel[l]
		fmt.Printf("\n### %s (%d runs)\n\n| figure | median | runs |\n|---|---:|---|\n", l, len(runs))
		var keys []string
		for k := range runs[0] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			var vals []string
			var nums []float64
			for _, r := range runs {
				s := fmt.Sprint(r[k])
				if v, ok := r[k].(float64); ok {
					nums = append(nums, v)
					s = strconv.FormatFloat(v, 'f', -1, 64)
					if v != float64(int64(v)) {
						s = strconv.FormatFloat(v, 'f', 2, 64)
					}
				}
				vals = append(vals, s)
			}
			med := ""
			if len(nums) == len(runs) {
				sort.Float64s(nums)
				med = strconv.FormatFloat(nums[len(nums)/2], 'f', 2, 64)
			}
			fmt.Printf("| %s | %s | %s |\n", k, med, strings.Join(vals, " · "))
		}
	}
	return nil
}
