package statetest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// SentinelMaster is the master name StartSentinel monitors.
const SentinelMaster = "mymaster"

// Sentinel is one redis-sentinel process monitoring a master started by the test.
type Sentinel struct {
	*Redis // the sentinel process itself (Addr is the sentinel's)
	// Master is the monitored redis-server.
	Master *Redis
	// URL is redis+sentinel://Addr/mymaster/0, the form the -R flag takes.
	URL string
}

// StartSentinel starts a redis-server (the master) and one sentinel monitoring it under
// SentinelMaster, on free loopback ports; both are stopped by t.Cleanup.
func StartSentinel(t testing.TB, opts ...Options) *Sentinel {
	t.Helper()
	master := StartRedis(t, opts...)
	_, mport, _ := net.SplitHostPort(master.Addr)
	port := FreePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\nprotected-mode no\ndir %s\n"+
		"sentinel monitor %s 127.0.0.1 %s 1\n"+
		"sentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 2000\n",
		port, dir, SentinelMaster, mport, SentinelMaster, SentinelMaster)
	if master.Password != "" {
		body += fmt.Sprintf("sentinel auth-pass %s %s\n", SentinelMaster, master.Password)
	}
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatalf("writing sentinel.conf: %v", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	r := &Redis{Addr: addr, URL: "redis://" + addr, t: t, dir: dir, args: []string{conf, "--sentinel"}}
	r.start()
	t.Cleanup(r.Stop)
	u := "redis+sentinel://" + addr + "/" + SentinelMaster + "/0"
	if master.Password != "" {
		u = "redis+sentinel://:" + master.Password + "@" + addr + "/" + SentinelMaster + "/0"
	}
	return &Sentinel{Redis: r, Master: master, URL: u}
}
