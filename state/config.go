package state

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"time"
)

// Config tunes the shared state. The zero value is valid: Open applies the defaults named
// on each field. cmd maps the YAML file and flags onto it.
type Config struct {
	// ReplicaID names this proxy replica in shared state (in-flight shares, scrape leases).
	// It must differ between replicas. Default: hostname-pid-random.
	ReplicaID string

	// DialTimeout bounds establishing one connection to Redis. Default 500ms.
	DialTimeout time.Duration
	// CommandTimeout bounds one background command or pipeline (heartbeats, record
	// writes, health probes). Request paths use LookupBudget instead. Default 1s.
	CommandTimeout time.Duration
	// IOTimeout bounds one socket read or write of a command that carries no deadline of
	// its own (batch records, file blobs of up to 1 MiB a chunk). Default 5s.
	IOTimeout time.Duration
	// PoolSize is the connection pool size per Redis node. Default 0 (go-redis: 10 per CPU).
	PoolSize int

	// HealthInterval is how often a healthy connection is probed. Default 500ms.
	HealthInterval time.Duration
	// ReconnectMin and ReconnectMax bound the exponential back-off between probes while
	// Redis is unreachable. Defaults 100ms and 5s.
	ReconnectMin time.Duration
	ReconnectMax time.Duration

	// HeartbeatInterval is how often this replica publishes its in-flight counts and reads
	// the other replicas'. Default 200ms.
	HeartbeatInterval time.Duration
	// InFlightLease is how long a published in-flight share stays valid without a new
	// heartbeat: a replica that dies stops counting after at most this long. It must be at
	// least twice HeartbeatInterval. Default 1s.
	InFlightLease time.Duration

	// LookupBudget is the longest a prefix lookup waits for Redis before answering from
	// the local cache (the Redis reply still fills the cache when it arrives). Default 5ms.
	LookupBudget time.Duration
	// PrefixTTL is how long block ownership is kept after it was last recorded; it
	// should follow how long vLLM keeps unused blocks. Default 5m.
	PrefixTTL time.Duration
	// PrefixCacheBlocks caps the local ownership cache, in blocks. Default 200000.
	PrefixCacheBlocks int
	// RecordQueue is how many Record calls may wait for the background writer; beyond
	// it records are dropped (and counted) rather than blocking. Default 4096.
	RecordQueue int
	// BackgroundLookups caps lookups still running past their budget; beyond it a lookup
	// answers from the local cache without asking Redis. Default 64.
	BackgroundLookups int

	// ScrapeLeaseTTL is how long one replica holds the right to scrape a backend without
	// renewing it. It should be two or three scrape intervals. Default 2s.
	ScrapeLeaseTTL time.Duration
	// ScrapeSnapshotTTL is how long a shared scrape result is kept in Redis. Default 10s.
	ScrapeSnapshotTTL time.Duration
}

// withDefaults returns cfg with every zero field set to its default.
func (cfg Config) withDefaults() Config {
	if cfg.ReplicaID == "" {
		cfg.ReplicaID = defaultReplicaID()
	}
	cfg.DialTimeout = cmp.Or(cfg.DialTimeout, 500*time.Millisecond)
	cfg.CommandTimeout = cmp.Or(cfg.CommandTimeout, time.Second)
	cfg.IOTimeout = cmp.Or(cfg.IOTimeout, 5*time.Second)
	cfg.HealthInterval = cmp.Or(cfg.HealthInterval, 500*time.Millisecond)
	cfg.ReconnectMin = cmp.Or(cfg.ReconnectMin, 100*time.Millisecond)
	cfg.ReconnectMax = cmp.Or(cfg.ReconnectMax, 5*time.Second)
	cfg.HeartbeatInterval = cmp.Or(cfg.HeartbeatInterval, 200*time.Millisecond)
	cfg.InFlightLease = cmp.Or(cfg.InFlightLease, time.Second)
	cfg.LookupBudget = cmp.Or(cfg.LookupBudget, 5*time.Millisecond)
	cfg.PrefixTTL = cmp.Or(cfg.PrefixTTL, 5*time.Minute)
	cfg.PrefixCacheBlocks = cmp.Or(cfg.PrefixCacheBlocks, 200_000)
	cfg.RecordQueue = cmp.Or(cfg.RecordQueue, 4096)
	cfg.BackgroundLookups = cmp.Or(cfg.BackgroundLookups, 64)
	cfg.ScrapeLeaseTTL = cmp.Or(cfg.ScrapeLeaseTTL, 2*time.Second)
	cfg.ScrapeSnapshotTTL = cmp.Or(cfg.ScrapeSnapshotTTL, 10*time.Second)
	return cfg
}

// Validate reports every problem with cfg after defaults are applied, joined.
func (cfg Config) Validate() error {
	c := cfg.withDefaults()
	var errs []error
	positive := func(name string, d time.Duration) {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %s", name, d))
		}
	}
	positive("dial timeout", c.DialTimeout)
	positive("command timeout", c.CommandTimeout)
	positive("io timeout", c.IOTimeout)
	positive("health interval", c.HealthInterval)
	positive("reconnect min", c.ReconnectMin)
	positive("reconnect max", c.ReconnectMax)
	positive("heartbeat interval", c.HeartbeatInterval)
	positive("in-flight lease", c.InFlightLease)
	positive("lookup budget", c.LookupBudget)
	positive("prefix ttl", c.PrefixTTL)
	positive("scrape lease ttl", c.ScrapeLeaseTTL)
	positive("scrape snapshot ttl", c.ScrapeSnapshotTTL)
	if c.ReconnectMax < c.ReconnectMin {
		errs = append(errs, fmt.Errorf("reconnect max (%s) must not be below reconnect min (%s)", c.ReconnectMax, c.ReconnectMin))
	}
	if c.HeartbeatInterval > 0 && c.InFlightLease < 2*c.HeartbeatInterval {
		errs = append(errs, fmt.Errorf("in-flight lease (%s) must be at least twice the heartbeat interval (%s)", c.InFlightLease, c.HeartbeatInterval))
	}
	if c.PrefixTTL > 0 && c.PrefixTTL < time.Second {
		errs = append(errs, fmt.Errorf("prefix ttl must be at least 1s, got %s", c.PrefixTTL))
	}
	if c.PoolSize < 0 {
		errs = append(errs, fmt.Errorf("pool size must not be negative, got %d", c.PoolSize))
	}
	for _, f := range []struct {
		name string
		n    int
	}{{"prefix cache blocks", c.PrefixCacheBlocks}, {"record queue", c.RecordQueue}, {"background lookups", c.BackgroundLookups}} {
		if f.n < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %d", f.name, f.n))
		}
	}
	if c.PrefixCacheBlocks > math.MaxInt32 {
		// The ownership cache indexes its slots with int32.
		errs = append(errs, fmt.Errorf("prefix cache blocks must be at most %d, got %d", math.MaxInt32, c.PrefixCacheBlocks))
	}
	if len(c.ReplicaID) > 128 {
		errs = append(errs, fmt.Errorf("replica id is longer than 128 bytes"))
	}
	return errors.Join(errs...)
}

func defaultReplicaID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "proxy"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}
