package routing

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

// fastConfig is a Config with short intervals for loopback tests.
func fastConfig(urls ...string) Config {
	cfg := Config{
		ScrapeInterval:        20 * time.Millisecond,
		HealthCheckInterval:   50 * time.Millisecond,
		ProbeTimeout:          time.Second,
		ModelsRefreshInterval: 50 * time.Millisecond,
		EjectBackoffBase:      20 * time.Millisecond,
		EjectBackoffCap:       80 * time.Millisecond,
	}
	for _, u := range urls {
		cfg.Backends = append(cfg.Backends, BackendConfig{URL: u})
	}
	return cfg
}

func startRouter(t *testing.T, cfg Config, opts ...Option) (*Router, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	r, err := New(cfg, nil, reg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(r.Stop)
	return r, reg
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRouterRoutesByModel(t *testing.T) {
	a := newFakeVLLM(t, "llama", "sql-lora@llama")
	b := newFakeVLLM(t, "llama")
	c := newFakeVLLM(t, "qwen")
	r, _ := startRouter(t, fastConfig(a.URL, b.URL, c.URL))

	ids := func() []string {
		var out []string
		for _, m := range r.Models() {
			out = append(out, m.ID)
		}
		return out
	}
	if got, want := ids(), []string{"llama", "sql-lora", "qwen"}; !slices.Equal(got, want) {
		t.Fatalf("Models() ids = %v, want %v", got, want)
	}
	for range 20 {
		pk, err := r.Pick(t.Context(), &Request{Model: "qwen"})
		if err != nil {
			t.Fatalf("Pick(qwen): %v", err)
		}
		if pk.Backend.ID() != c.URL {
			t.Fatalf("Pick(qwen) went to %s, want %s", pk.Backend.ID(), c.URL)
		}
		pk.Done(Outcome{Status: 200})
	}
	pk, err := r.Pick(t.Context(), &Request{Model: "sql-lora"})
	if err != nil || pk.Backend.ID() != a.URL {
		t.Fatalf("Pick(sql-lora) = %v, %v; want backend %s", pk, err, a.URL)
	}
	pk.Done(Outcome{Status: 200})

	_, err = r.Pick(t.Context(), &Request{Model: "nope"})
	var ume *UnknownModelError
	if !errors.As(err, &ume) {
		t.Fatalf("Pick(nope) error = %v, want *UnknownModelError", err)
	}
	if ume.Model != "nope" || !slices.Equal(ume.Available, []string{"llama", "sql-lora", "qwen"}) {
		t.Fatalf("UnknownModelError = %+v", ume)
	}
	if _, err := r.Pick(t.Context(), &Request{}); !errors.Is(err, ErrNoModel) {
		t.Fatalf("Pick(no model) error = %v, want ErrNoModel", err)
	}
}

func TestRouterSingleModelDefault(t *testing.T) {
	a := newFakeVLLM(t, "llama", "sql-lora@llama")
	r, _ := startRouter(t, fastConfig(a.URL))
	pk, err := r.Pick(context.Background(), &Request{})
	if err != nil {
		t.Fatalf("Pick(no model): %v", err)
	}
	defer pk.Done(Outcome{Status: 200})
	if pk.Model != "llama" {
		t.Fatalf("Pick.Model = %q, want llama", pk.Model)
	}
}

func TestLifecycle(t *testing.T) {
	a := newFakeVLLM(t, "m")
	before := goleak.IgnoreCurrent()
	r, err := New(fastConfig(a.URL), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err == nil {
		t.Fatal("second Start succeeded")
	}
	scrapes := a.metricsHits.Load()
	eventually(t, "background scrapes", func() bool { return a.metricsHits.Load() > scrapes+2 })
	cancel() // cancelling Start's context stops the loops too
	r.Stop()
	r.Stop()
	// Every goroutine the router started is gone (the fake server's connection goroutines
	// end once Stop closed the idle connections).
	goleak.VerifyNone(t, before)
	if err := r.Start(t.Context()); err == nil {
		t.Fatal("Start after Stop succeeded")
	}
	// Picks still work on a stopped router (the pool is just no longer refreshed).
	pk, err := r.Pick(t.Context(), &Request{Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	pk.Done(Outcome{Status: 200})
}
