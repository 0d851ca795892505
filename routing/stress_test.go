package routing

import (
	"fmt"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestConcurrentPicksAndUpdates hammers Pick/Done while backends are removed and re-added
// and scrapes run: no pick fails, and every count returns to zero.
func TestConcurrentPicksAndUpdates(t *testing.T) {
	a := newFakeVLLM(t, "m")
	b := newFakeVLLM(t, "m")
	c := newFakeVLLM(t, "m")
	r, _ := startRouter(t, fastConfig(a.URL, b.URL, c.URL))
	all := []BackendConfig{{URL: a.URL}, {URL: b.URL}, {URL: c.URL}}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				cl := ClassInteractive
				if (w+i)%3 == 0 {
					cl = ClassBatch
				}
				pk, err := r.Pick(t.Context(), &Request{Model: "m", Class: cl, Prompt: "hello world"})
				if err != nil {
					errs <- fmt.Errorf("worker %d pick %d: %w", w, i, err)
					return
				}
				pk.Done(Outcome{Status: 200})
			}
		})
	}
	for i := range 50 {
		// Always keep a; flip b and c in and out.
		next := all[:1+i%3]
		if err := r.Update(next); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Update(all); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, s := range r.LoadStats() {
		if s.InFlight != 0 || s.InFlightByClass[ClassBatch] != 0 || s.InFlightByClass[ClassInteractive] != 0 {
			t.Errorf("%s: in-flight left after all Done: %+v", s.URL, s)
		}
	}
	for _, bk := range r.Backends() {
		bk.mu.Lock()
		tokens := bk.inFlightTokens
		bk.mu.Unlock()
		if tokens != 0 {
			t.Errorf("%s: in-flight tokens %d after all Done", bk.ID(), tokens)
		}
		for _, cl := range classes {
			if v := testutil.ToFloat64(r.metrics.inFlight.WithLabelValues(bk.ID(), string(cl))); v != 0 {
				t.Errorf("%s %s: in-flight gauge %v after all Done", bk.ID(), cl, v)
			}
		}
	}
}

func BenchmarkPick(b *testing.B) {
	for _, n := range []int{3, 64} {
		b.Run(fmt.Sprintf("backends=%d", n), func(b *testing.B) {
			cfg := Config{}
			for i := range n {
				cfg.Backends = append(cfg.Backends, BackendConfig{URL: fmt.Sprintf("http://10.0.0.%d:8000", i+1), Models: []string{"m"}})
			}
			r, err := New(cfg, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			req := &Request{Model: "m", Prompt: "hello"}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					pk, err := r.Pick(b.Context(), req)
					if err != nil {
						b.Fatal(err)
					}
					pk.Done(Outcome{Status: 200})
				}
			})
		})
	}
}
