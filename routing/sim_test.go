package routing

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/sim"
)

func startSim(t *testing.T, cfg sim.Config) *sim.Server {
	t.Helper()
	s, err := sim.Start(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("sim.Start: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// complete sends one completion straight to a simulator (not through any router).
func complete(ctx context.Context, url, model, prompt string, maxTokens int) error {
	body, _ := json.Marshal(map[string]any{"model": model, "prompt": prompt, "max_tokens": maxTokens})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/completions", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	drainClose(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// TestWithSimulators runs the router against simulated vLLM servers: V1 with two
// data-parallel engines and a LoRA adapter, V0 names, and priority scheduling.
func TestWithSimulators(t *testing.T) {
	v1 := startSim(t, sim.Config{Model: "llama", LoRAs: []string{"sql"}, DataParallel: 2,
		DecodeStepMs: 20, SchedulingPolicy: sim.PolicyPriority})
	v0 := startSim(t, sim.Config{Model: "opt", MetricsVersion: sim.MetricsV0, Instant: true})
	r, _ := startRouter(t, fastConfig(v1.URL(), v0.URL()))

	var ids []string
	for _, m := range r.Models() {
		ids = append(ids, m.ID)
		if m.ID == "sql" && (!m.IsLoRA() || *m.Parent != "llama") {
			t.Errorf("LoRA entry %+v lacks parent llama", m)
		}
	}
	if fmt.Sprint(ids) != "[llama sql opt]" {
		t.Fatalf("models = %v, want [llama sql opt]", ids)
	}
	eventually(t, "priority detected on v1", r.Backends()[0].PriorityScheduling)
	if r.Backends()[1].PriorityScheduling() {
		t.Fatalf("priority detection: v1 %v (want true), v0 %v (want false)",
			r.Backends()[0].PriorityScheduling(), r.Backends()[1].PriorityScheduling())
	}
	if s := statsOf(t, r, v0.URL()); s.MetricsStale || s.Engines != 1 {
		t.Fatalf("V0 backend stats %+v", s)
	}

	// Six long requests spread over two engines: the scrape sums them.
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() { _ = complete(ctx, v1.URL(), "llama", fmt.Sprintf("prompt %d", i), 2000) })
	}
	eventually(t, "six running summed over two engines", func() bool {
		s := statsOf(t, r, v1.URL())
		return s.Running == 6 && s.Engines == 2 && !s.MetricsStale
	})
	s := statsOf(t, r, v1.URL())
	if want := 6.0 / 8; s.Load != want || s.KVCacheUsage <= 0 {
		t.Fatalf("load %v (want %v), kv %v (want > 0)", s.Load, want, s.KVCacheUsage)
	}
	cancel()
	wg.Wait()

	// The same prompt twice on the V0 server: its prefix-cache counters show hits.
	prompt := string(bytes.Repeat([]byte("the same long system prompt "), 40))
	for range 3 {
		if err := complete(t.Context(), v0.URL(), "opt", prompt, 1); err != nil {
			t.Fatal(err)
		}
		r.scrapeOne(t.Context(), r.Backends()[1])
	}
	if s := statsOf(t, r, v0.URL()); s.PrefixCacheHitRate <= 0.5 {
		t.Fatalf("V0 prefix hit rate %v after repeating one prompt, want > 0.5", s.PrefixCacheHitRate)
	}

	// Health follows the simulator.
	v0.SetHealthy(false)
	eventually(t, "v0 ejected", func() bool { return !r.Health().Backends[1].Healthy })
	if _, err := r.Pick(t.Context(), &Request{Model: "opt"}); err == nil {
		t.Fatal("Pick(opt) succeeded with its only backend ejected")
	}
	v0.SetHealthy(true)
	eventually(t, "v0 restored", func() bool { return r.Health().Backends[1].Healthy })
}

// TestSimKilledUnderPicks: a backend that dies stops being picked once passive failures
// eject it, and picks keep succeeding on the survivors.
func TestSimKilledUnderPicks(t *testing.T) {
	cfg := sim.Config{Model: "m", Instant: true}
	a, b, c := startSim(t, cfg), startSim(t, cfg), startSim(t, cfg)
	rcfg := fastConfig(a.URL(), b.URL(), c.URL())
	rcfg.HealthCheckInterval = time.Hour // passive health only
	r, _ := startRouter(t, rcfg)
	b.Close()
	picked := map[string]int{}
	for range 60 {
		pk, err := r.Pick(t.Context(), &Request{Model: "m"})
		if err != nil {
			t.Fatal(err)
		}
		err = complete(t.Context(), pk.Backend.ID(), "m", "hi", 1)
		pk.Done(Outcome{Err: err, Status: map[bool]int{true: 200, false: 0}[err == nil]})
		picked[pk.Backend.ID()]++
	}
	if n := picked[b.URL()]; n > rcfg.withDefaults().MaxFails {
		t.Fatalf("dead backend picked %d times, want at most max_fails", n)
	}
	if r.Health().Backends[1].Healthy {
		t.Fatal("dead backend not ejected")
	}
}
