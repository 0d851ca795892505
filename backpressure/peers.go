package backpressure

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/vllm-proxy/vllm-proxy/state"
)

// Peers carries messages between the replicas sharing the batch budget, at most once and
// unstored. *state.Bus implements it.
type Peers interface {
	// Publish sends msg to the other replicas.
	Publish(ctx context.Context, msg []byte) error
	// Run calls deliver with every message another replica publishes until ctx ends.
	Run(ctx context.Context, deliver func(msg []byte))
}

var _ Peers = (*state.Bus)(nil)

// Option configures a Controller beyond its Config.
type Option func(*Controller)

// WithPeers makes the replica's surge detection count the interactive arrivals every
// replica routes, not only its own: each replica publishes the backends it routed
// interactive requests to, at most every peerSpacing, and feeds what the others publish
// to its own detectors. Without it, a replica among n sees 1/n of the arrivals and takes
// about n times as long to notice a surge, and replicas notice it one after another.
func WithPeers(p Peers) Option { return func(c *Controller) { c.peers = p } }

// peerSpacing is the least time between two messages of this replica's interactive
// arrivals: arrivals meanwhile go out together, so a busy replica sends at most about
// 100 messages a second and the others learn of an arrival within about this long.
const peerSpacing = 10 * time.Millisecond

// peerMsg is the message replicas exchange: how many interactive requests the sender
// routed to each backend since its last message.
type peerMsg struct {
	Picks map[string]int `json:"picks"`
}

// maxPeerPicks caps one backend's count in a message: more arrivals than that inside
// peerSpacing are a surge anyway, and a bigger number is someone else's garbage.
const maxPeerPicks = 10000

// decodePeerMsg parses a message from another replica, keeping the counts between 1 and
// maxPeerPicks.
func decodePeerMsg(b []byte) (map[string]int, error) {
	var m peerMsg
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decoding a message from another replica: %w", err)
	}
	picks := make(map[string]int, len(m.Picks))
	for backend, n := range m.Picks {
		if n > 0 {
			picks[backend] = min(n, maxPeerPicks)
		}
	}
	return picks, nil
}

// notePick queues one interactive arrival on backend for the other replicas. c.mu must
// be held.
func (c *Controller) notePick(backend string) {
	if c.peers == nil {
		return
	}
	c.pending[backend]++
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// publishPicks sends the arrivals notePick queued, at most every peerSpacing, until ctx
// ends.
func (c *Controller) publishPicks(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		}
		c.mu.Lock()
		picks := c.pending
		c.pending = map[string]int{}
		c.mu.Unlock()
		msg, err := json.Marshal(peerMsg{Picks: picks})
		if err == nil {
			err = c.peers.Publish(ctx, msg)
		}
		if err != nil {
			c.log.LogAttrs(ctx, slog.LevelDebug, "publishing interactive arrivals to the other replicas failed", slog.Any("error", err))
		}
		t := time.NewTimer(peerSpacing)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// receivePicks feeds the interactive arrivals other replicas publish to this replica's
// surge detectors until ctx ends; a surge they start cuts batch as one this replica's
// own arrivals start would (see InteractivePicked).
func (c *Controller) receivePicks(ctx context.Context) {
	c.peers.Run(ctx, func(msg []byte) {
		picks, err := decodePeerMsg(msg)
		if err != nil {
			c.log.LogAttrs(ctx, slog.LevelDebug, "ignoring a message from another replica", slog.Any("error", err))
			return
		}
		now := time.Now()
		var started []string
		c.mu.Lock()
		for backend, n := range picks {
			if st := c.backends[backend]; st != nil && c.arrive(st.group, n, now) {
				started = append(started, st.group)
			}
		}
		c.mu.Unlock()
		for _, g := range started {
			c.surgeStarted(ctx, g)
		}
	})
}
