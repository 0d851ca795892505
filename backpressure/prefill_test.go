package backpressure

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/vllm-proxy/vllm-proxy/routing"
)

// TestPrefillHold: a streamed interactive request's pending prefill holds batch
// admissions on its backend back until its first byte, which wakes the lines refused
// meanwhile, or until Config.PrefillHold when no first byte is reported.
func TestPrefillHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{AdmitGap: -1}, 16)
		rel, ok := r.ctl.TryAcquire(t.Context(), backendURL) // the controller now knows the backend
		if !ok {
			t.Fatal("first batch slot refused")
		}
		defer rel()
		picks := r.interactive(t, 1)
		defer picks[0].Done(routing.Outcome{})
		prefilled := r.ctl.InteractivePicked(backendURL)
		if _, ok := r.ctl.TryAcquire(t.Context(), backendURL); ok {
			t.Fatal("a batch slot was granted while an interactive prefill was pending there")
		}
		changed := r.ctl.Changed()
		prefilled()
		select {
		case <-changed:
		default:
			t.Fatal("the prefill's end did not wake the lines refused for it")
		}
		rel2, ok := r.ctl.TryAcquire(t.Context(), backendURL)
		if !ok {
			t.Fatal("refused after the prefill ended")
		}
		rel2()
		prefilled() // a second call changes nothing

		r.ctl.InteractivePicked(backendURL) // its first byte is never reported
		if _, ok := r.ctl.TryAcquire(t.Context(), backendURL); ok {
			t.Fatal("a batch slot was granted at once after a second interactive pick")
		}
		time.Sleep(DefaultPrefillHold - time.Millisecond)
		if _, ok := r.ctl.TryAcquire(t.Context(), backendURL); ok {
			t.Fatal("granted before PrefillHold passed")
		}
		time.Sleep(time.Millisecond)
		rel3, ok := r.ctl.TryAcquire(t.Context(), backendURL)
		if !ok {
			t.Fatal("still refused once PrefillHold passed")
		}
		rel3()
	})
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{AdmitGap: -1, PrefillHold: -1}, 16)
		rel, ok := r.ctl.TryAcquire(t.Context(), backendURL)
		if !ok {
			t.Fatal("first batch slot refused")
		}
		defer rel()
		r.ctl.InteractivePicked(backendURL)
		rel2, ok := r.ctl.TryAcquire(t.Context(), backendURL)
		if !ok {
			t.Fatal("PrefillHold -1: refused while an interactive prefill was pending")
		}
		rel2()
	})
}
