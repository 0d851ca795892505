package state_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

func TestMetricsNameScriptsAndLintClean(t *testing.T) {
	r := statetest.StartRedis(t, statetest.Options{Password: "hunter2-secret"})
	reg := prometheus.NewRegistry()
	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.Level(-12)})) // Loud
	s := open(t, r.URL, fastConfig("a"), log, reg)
	eventually(t, 5*time.Second, "connected", s.Connected)
	chain := hashes(t, 4)
	s.Prefix().Record("b1", chain)
	s.InFlight().Add("b1", "interactive", 1)
	eventually(t, 5*time.Second, "lookup, record and heartbeat scripts to be timed", func() bool {
		s.Prefix().Lookup(t.Context(), hashes(t, 2))
		return metricValue(t, reg, "vllm_proxy_redis_command_duration_seconds", "command", "script:prefix_lookup") > 0 &&
			metricValue(t, reg, "vllm_proxy_redis_command_duration_seconds", "command", "pipeline") > 0 &&
			metricValue(t, reg, "vllm_proxy_redis_command_duration_seconds", "command", "script:inflight_sync") > 0
	})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	out := logs.String()
	if !strings.Contains(out, "command=script:prefix_lookup") {
		t.Errorf("Loud logs do not show script outcomes:\n%.2000s", out)
	}
	if strings.Contains(out, "hunter2-secret") {
		t.Fatal("password in Loud logs")
	}
}

func TestMetricsCountErrorsWhileDown(t *testing.T) {
	r := statetest.StartRedis(t)
	reg := prometheus.NewRegistry()
	s := open(t, r.URL, fastConfig("a"), nil, reg)
	eventually(t, 5*time.Second, "connected", s.Connected)
	r.Kill()
	eventually(t, 5*time.Second, "errors counted and disconnect seen", func() bool {
		return metricValue(t, reg, "vllm_proxy_redis_errors_total") > 0 &&
			metricValue(t, reg, "vllm_proxy_redis_disconnects_total") == 1 &&
			metricValue(t, reg, "vllm_proxy_redis_connected") == 0
	})
	// Lookups while down are answered locally and say so.
	s.Prefix().Lookup(t.Context(), hashes(t, 3))
	if got := metricValue(t, reg, "vllm_proxy_state_prefix_lookups_total", "source", "local"); got == 0 {
		t.Fatal("lookup while redis is down not counted as local")
	}
}
