package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vllm-proxy/vllm-proxy/bench"
	"github.com/vllm-proxy/vllm-proxy/sim"
)

// TestBenchCommandWritesReports runs `vllm-proxy bench` against an in-process simulator
// and checks every report the flags ask for.
func TestBenchCommandWritesReports(t *testing.T) {
	s, err := sim.Start(t.Context(), sim.Config{Model: "m", TimeScale: 50}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	args := []string{"-q", "bench", "--targets", s.URL() + "/v1", "--model", "m", "-c", "4", "-n", "24",
		"-w", "shared-prefix", "--groups", "2", "--users", "2", "--system-tokens", "64", "--question-tokens", "16",
		"--output-tokens", "4", "--scrape", s.URL() + "/metrics", "--scrape-interval", "10ms",
		"--out-json", filepath.Join(dir, "r.json"), "--out-csv", filepath.Join(dir, "r.csv"), "--charts", filepath.Join(dir, "charts")}
	if code := run(context.Background(), args, envOf(nil), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr %s, stdout %s", code, stderr.String(), stdout.String())
	}
	if out := stdout.String(); !strings.Contains(out, "| target | requests | errors |") || !strings.Contains(out, "engine prefix hit rate") {
		t.Errorf("markdown on stdout lacks the tables:\n%s", out)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "r.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Targets) != 1 || rep.Targets[0].OK != 24 || rep.Workload != bench.WorkloadSharedPrefix || rep.Targets[0].Engine == nil {
		t.Errorf("json report %+v", rep)
	}
	csvRaw, err := os.ReadFile(filepath.Join(dir, "r.csv"))
	if err != nil || strings.Count(string(csvRaw), "\n") != 25 {
		t.Errorf("csv: %v, %d lines, want header + 24", err, strings.Count(string(csvRaw), "\n"))
	}
	for _, name := range []string{bench.ChartTTFTCDF, bench.ChartThroughput} {
		f, err := os.Open(filepath.Join(dir, "charts", name))
		if err != nil {
			t.Fatal(err)
		}
		_, err = png.Decode(f)
		f.Close()
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestBenchCommandRejectsBadConfig(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"bench", "--targets", "ftp://x", "--model", "m"}, envOf(nil), &stdout, &stderr)
	if code != exitUsage || !strings.Contains(stdout.String()+stderr.String(), "duration or requests") {
		t.Errorf("exit %d, output %s %s", code, stdout.String(), stderr.String())
	}
}
