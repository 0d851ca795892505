package routing

import (
	"net/http"
	"testing"
)

// TestLoadShareAcrossReplicas: two routers sharing one LoadShare see each other's in-flight
// requests in their load scores and pick around them.
func TestLoadShareAcrossReplicas(t *testing.T) {
	a := newFakeVLLM(t, "m")
	b := newFakeVLLM(t, "m")
	share := &LocalLoadShare{}
	cfg := fastConfig(a.URL, b.URL)
	cfg.Backends[0].Capacity, cfg.Backends[1].Capacity = 4, 4
	r1, _ := newIdleRouter(t, cfg, WithLoadShare(share))
	r2, _ := newIdleRouter(t, cfg, WithLoadShare(share))
	for _, r := range []*Router{r1, r2} {
		for _, bk := range r.Backends() {
			r.scrapeOne(t.Context(), bk) // both idle per the scrape
		}
	}
	// Replica 1 loads a to 3/4 (batch and interactive mixed).
	var picks []*Pick
	for i := range 3 {
		cl := ClassInteractive
		if i == 0 {
			cl = ClassBatch
		}
		pk, err := r1.Pick(t.Context(), &Request{Model: "m", Class: cl, Exclude: []string{b.URL}})
		if err != nil {
			t.Fatal(err)
		}
		picks = append(picks, pk)
	}
	if got := share.InFlight(a.URL, string(ClassBatch)); got != 1 {
		t.Fatalf("shared batch in-flight on a = %d, want 1", got)
	}
	s := statsOf(t, r2, a.URL)
	if s.InFlight != 3 || s.Load != 0.75 || s.InFlightByClass[ClassInteractive] != 2 || s.InFlightByClass[ClassBatch] != 1 {
		t.Fatalf("replica 2's view of a = %+v, want in_flight 3 (shared), load 0.75, 2 interactive + 1 batch", s)
	}
	own := func(r *Router, c Class) int64 {
		for _, bk := range r.Backends() {
			if bk.ID() == a.URL {
				return bk.OwnInFlight(c)
			}
		}
		t.Fatalf("no backend %s", a.URL)
		return 0
	}
	if i1, b1, i2, b2 := own(r1, ClassInteractive), own(r1, ClassBatch), own(r2, ClassInteractive), own(r2, ClassBatch); i1 != 2 || b1 != 1 || i2 != 0 || b2 != 0 {
		t.Fatalf("own in-flight on a: replica 1 %d interactive %d batch, replica 2 %d/%d; want 2/1 and 0/0", i1, b1, i2, b2)
	}
	for range 20 {
		pk, err := r2.Pick(t.Context(), &Request{Model: "m"})
		if err != nil {
			t.Fatal(err)
		}
		if pk.Backend.ID() != b.URL {
			t.Fatalf("replica 2 picked %s, loaded by replica 1", pk.Backend.ID())
		}
		pk.Done(Outcome{Status: http.StatusOK})
	}
	for _, pk := range picks {
		pk.Done(Outcome{Status: http.StatusOK})
	}
	if got := statsOf(t, r2, a.URL).InFlight; got != 0 {
		t.Fatalf("shared in-flight after Done = %d, want 0", got)
	}
	r1.Stop()
	if err := r1.Update([]BackendConfig{{URL: b.URL}}); err != nil {
		t.Fatal(err)
	}
	if got := share.InFlight(a.URL, string(ClassInteractive)); got != 0 {
		t.Fatalf("removed backend still counted in the share: %d", got)
	}
}

// TestLoadShareSurvivesRemoveAndReAdd: a pick outstanding on a backend that is removed and
// added back does not skew the shared count of the new incarnation.
func TestLoadShareSurvivesRemoveAndReAdd(t *testing.T) {
	a := newFakeVLLM(t, "m")
	b := newFakeVLLM(t, "m")
	share := &LocalLoadShare{}
	r, _ := newIdleRouter(t, fastConfig(a.URL, b.URL), WithLoadShare(share))
	old, err := r.Pick(t.Context(), &Request{Model: "m", Exclude: []string{b.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Update([]BackendConfig{{URL: b.URL}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Update([]BackendConfig{{URL: a.URL, Models: []string{"m"}}, {URL: b.URL}}); err != nil {
		t.Fatal(err)
	}
	fresh, err := r.Pick(t.Context(), &Request{Model: "m", Exclude: []string{b.URL}})
	if err != nil {
		t.Fatal(err)
	}
	old.Done(Outcome{Status: http.StatusOK})
	if got := share.InFlight(a.URL, string(ClassInteractive)); got != 1 {
		t.Fatalf("shared count of a after the old pick finished = %d, want 1 (the fresh pick)", got)
	}
	fresh.Done(Outcome{Status: http.StatusOK})
	if got := share.InFlight(a.URL, string(ClassInteractive)); got != 0 {
		t.Fatalf("shared count of a = %d, want 0", got)
	}
}
