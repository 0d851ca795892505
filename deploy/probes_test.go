package deploy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/vllm-proxy/vllm-proxy/sim"
)

// TestProbesAnswer asks the real binary the Deployment's probe paths: readiness says
// 200 while a backend is healthy and 503 when none is, while liveness stays 200, so an
// outage of every vLLM server takes the proxies out of the Service without restarting
// them.
func TestProbesAnswer(t *testing.T) {
	dep := find[appsv1.Deployment](loadManifests(t, k8sDir), "vllm-proxy")
	c := dep.Spec.Template.Spec.Containers[0]
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil {
		t.Fatal("the Deployment needs HTTP readiness and liveness probes")
	}
	ready, live := c.ReadinessProbe.HTTPGet.Path, c.LivenessProbe.HTTPGet.Path

	s, err := sim.Start(t.Context(), sim.Config{Model: "m", Instant: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "backends:\n  - url: %s\nrouting:\n  health_check_interval: 50ms\n", s.URL()), 0o600); err != nil {
		t.Fatal(err)
	}
	base := runProxy(t, buildProxy(t), "serve", "-R", "memory", "--listen", "127.0.0.1:0", "--config", cfg, "-L", "json")

	waitFor(t, 10*time.Second, "readiness 200", func() bool { return status(t, base+ready) == http.StatusOK })
	if got := status(t, base+live); got != http.StatusOK {
		t.Errorf("liveness %s = %d with a healthy backend", live, got)
	}
	s.SetHealthy(false)
	waitFor(t, 10*time.Second, "readiness 503 with no healthy backend", func() bool {
		return status(t, base+ready) == http.StatusServiceUnavailable
	})
	if got := status(t, base+live); got != http.StatusOK {
		t.Errorf("liveness %s = %d with no healthy backend: the kubelet would restart every proxy", live, got)
	}
}

// status returns the status code of GET url.
func status(t *testing.T, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}
