package statetest

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cluster is a Redis Cluster of three masters (no replicas) on loopback ports, started for
// one test and stopped by t.Cleanup.
type Cluster struct {
	// Nodes are the three servers, one per hash-slot range.
	Nodes []*Redis
	// URL is the redis+cluster:// form of the -R flag listing every node.
	URL string
}

// StartCluster starts three cluster-enabled redis-servers, joins them with
// `redis-cli --cluster create`, and waits until every node reports cluster_state:ok.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatalf("redis-cli not found on PATH (run `make test`, which installs it): %v", err)
	}
	c := &Cluster{}
	addrs := make([]string, 0, 3)
	for range 3 {
		r := StartRedis(t, Options{Extra: []string{
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000",
		}})
		c.Nodes = append(c.Nodes, r)
		addrs = append(addrs, r.Addr)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil { // #nosec G204 -- test helper: fixed binary, args are loopback addresses of servers it started
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, n := range c.Nodes {
		if err := waitClusterOK(ctx, n.Addr); err != nil {
			t.Fatalf("cluster node %s: %v", n.Addr, err)
		}
	}
	c.URL = "redis+cluster://" + strings.Join(addrs, ",")
	return c
}

// FlushAll empties every node, as FLUSHALL on the whole cluster would.
func (c *Cluster) FlushAll() error {
	for _, n := range c.Nodes {
		if _, err := n.Do("FLUSHALL"); err != nil {
			return fmt.Errorf("flushing %s: %w", n.Addr, err)
		}
	}
	return nil
}

// waitClusterOK polls CLUSTER INFO on addr until it says cluster_state:ok and every slot
// is assigned.
func waitClusterOK(ctx context.Context, addr string) error {
	host, port, _ := strings.Cut(addr, ":")
	var last string
	for ctx.Err() == nil {
		out, err := exec.CommandContext(ctx, "redis-cli", "-h", host, "-p", port, "cluster", "info").Output() // #nosec G204 -- test helper: fixed binary, host/port of a server it started
		last = string(out)
		if err == nil && strings.Contains(last, "cluster_state:ok") && strings.Contains(last, "cluster_slots_assigned:"+strconv.Itoa(16384)) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("cluster not ok before the deadline; last CLUSTER INFO:\n%s", last)
}
