package state

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Bus carries short messages between the replicas on one Redis over pub/sub, on one
// topic. Delivery is at most once, to the replicas subscribed at the time: nothing is
// stored, so a message is for what happens in the next moments only (a replica that
// misses one, disconnected or starting, does as it would alone). In memory mode there are
// no other replicas: Publish does nothing and Run delivers nothing. Safe for concurrent
// use.
type Bus struct {
	s       *Store
	channel string
}

// Bus returns the bus of topic (a short name, for example "backpressure").
func (s *Store) Bus(topic string) *Bus { return &Bus{s: s, channel: busChannel(topic)} }

// Publish sends msg to the other replicas subscribed to the bus.
func (b *Bus) Publish(ctx context.Context, msg []byte) error {
	if b.s.rdb == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, b.s.cfg.CommandTimeout)
	defer cancel()
	if err := b.s.rdb.Publish(ctx, b.channel, encodeEnvelope(b.s.cfg.ReplicaID, msg)).Err(); err != nil {
		b.s.health.observe(err)
		return fmt.Errorf("publishing on %s: %w", b.channel, err)
	}
	return nil
}

// Run subscribes to the bus and calls deliver, one message at a time, with each message
// another replica publishes (this replica's own are skipped, as are messages not in the
// bus's framing), until ctx ends. While Redis is unreachable the subscription
// reconnects by itself; messages published meanwhile are lost. In memory mode it only
// waits for ctx.
func (b *Bus) Run(ctx context.Context, deliver func(msg []byte)) {
	if b.s.rdb == nil {
		<-ctx.Done()
		return
	}
	ps := b.s.rdb.Subscribe(ctx, b.channel)
	defer func() { _ = ps.Close() }()
	msgs := ps.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			from, body, ok := decodeEnvelope(m.Payload)
			if !ok || from == b.s.cfg.ReplicaID {
				continue
			}
			deliver(body)
		}
	}
}

// encodeEnvelope frames msg with the sending replica's id: "<len(id)>:<id><msg>".
func encodeEnvelope(from string, msg []byte) string {
	var sb strings.Builder
	sb.Grow(len(from) + len(msg) + 4)
	sb.WriteString(strconv.Itoa(len(from)))
	sb.WriteByte(':')
	sb.WriteString(from)
	sb.Write(msg)
	return sb.String()
}

// decodeEnvelope splits a payload framed by encodeEnvelope; ok is false for anything else.
func decodeEnvelope(payload string) (from string, msg []byte, ok bool) {
	head, rest, found := strings.Cut(payload, ":")
	if !found || head == "" || len(head) > 4 {
		return "", nil, false
	}
	n, err := strconv.Atoi(head)
	if err != nil || n < 0 || n > len(rest) || head != strconv.Itoa(n) {
		return "", nil, false
	}
	return rest[:n], []byte(rest[n:]), true
}
