package state_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/state"
	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

// inbox collects what a Bus delivers.
type inbox struct {
	mu   sync.Mutex
	msgs []string
}

func (in *inbox) deliver(msg []byte) {
	in.mu.Lock()
	in.msgs = append(in.msgs, string(msg))
	in.mu.Unlock()
}

func (in *inbox) got() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.msgs...)
}

func (in *inbox) has(msg string) bool {
	for _, m := range in.got() {
		if m == msg {
			return true
		}
	}
	return false
}

// runBus runs b.Run into a new inbox until the test ends.
func runBus(t *testing.T, b *state.Bus) *inbox {
	t.Helper()
	in := &inbox{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Run(ctx, in.deliver)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return in
}

// TestBusBetweenReplicas: a message one replica publishes reaches the other replicas on
// the topic, not itself and not another topic; after Redis restarts the subscriptions
// come back by themselves.
func TestBusBetweenReplicas(t *testing.T) {
	r := statetest.StartRedis(t)
	a := open(t, r.URL, fastConfig("a"), nil, nil)
	b := open(t, r.URL, fastConfig("b:with:colons"), nil, nil)
	inA, inB, inOther := runBus(t, a.Bus("bp")), runBus(t, b.Bus("bp")), runBus(t, b.Bus("other"))

	// A subscription starts asynchronously: publish until it is there.
	publishUntil := func(from *state.Store, msg string, to *inbox) {
		t.Helper()
		eventually(t, 5*time.Second, "message "+msg+" delivered", func() bool {
			_ = from.Bus("bp").Publish(t.Context(), []byte(msg))
			return to.has(msg)
		})
	}
	publishUntil(a, "from a", inB)
	publishUntil(b, "from b: 1:x", inA)
	if inA.has("from a") || inB.has("from b: 1:x") {
		t.Errorf("a replica got its own message: a %q, b %q", inA.got(), inB.got())
	}
	if got := inOther.got(); len(got) != 0 {
		t.Errorf("another topic got %q", got)
	}

	r.Restart()
	publishUntil(a, "after restart", inB)
}

// TestBusMemory: with no Redis there are no other replicas: Publish succeeds and Run
// delivers nothing, returning when its context ends.
func TestBusMemory(t *testing.T) {
	s := open(t, "memory", fastConfig("a"), nil, nil)
	in := &inbox{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Bus("bp").Run(ctx, in.deliver)
	}()
	if err := s.Bus("bp").Publish(t.Context(), []byte("x")); err != nil {
		t.Fatalf("Publish in memory mode: %v", err)
	}
	cancel()
	<-done
	if got := in.got(); len(got) != 0 {
		t.Errorf("memory mode delivered %q", got)
	}
}
