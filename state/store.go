package state

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Store is the handle on shared state: a Redis client (single server, Sentinel or Cluster)
// or, for -R memory, in-memory twins. Routing gets in-flight sharing, prefix ownership and
// scrape leases from it; batch gets its job and blob stores.
//
// Open never fails because Redis is down: the connection is made lazily, a health loop
// probes it, and every user of the Store falls back to local state while it is
// unreachable. Methods are safe for concurrent use. Close stops the background loops and
// closes the connection; call it last during shutdown.
type Store struct {
	url     URL
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	rdb     redis.UniversalClient // nil in memory mode
	scripts *scripts
	health  *health

	inflight *InFlight
	prefix   *PrefixIndex
	scrapes  *ScrapeLeases

	ctx    context.Context // lives until Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
}

// Open builds the Store for u. It validates cfg, registers metrics on reg (nil: none kept)
// and starts the background loops; it does not wait for Redis. The loops live until Close,
// not until ctx is done: ctx only supplies values (and bounds nothing that blocks).
func Open(ctx context.Context, u URL, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("state config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	s := &Store{
		url:     u,
		cfg:     cfg,
		log:     log.With("component", "state", "redis", u.Redacted(), "replica", cfg.ReplicaID),
		metrics: NewMetrics(reg),
		scripts: newScripts(),
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if u.Mode != ModeMemory {
		rdb, err := newClient(u, cfg)
		if err != nil {
			s.cancel()
			return nil, err
		}
		rdb.AddHook(metricsHook{m: s.metrics, log: s.log, scripts: s.scripts.names()})
		s.rdb = rdb
	}
	s.health = newHealth(s)
	s.inflight = newInFlight(s)
	s.prefix = newPrefixIndex(s)
	s.scrapes = newScrapeLeases(s)
	s.health.onResync(s.inflight.resync)
	s.health.onResync(s.prefix.resyncSoon)
	s.start(s.health.run)
	s.start(s.inflight.run)
	s.start(s.prefix.run)
	return s, nil
}

// start runs fn in a goroutine owned by s; Close cancels s.ctx and waits for it.
func (s *Store) start(fn func(ctx context.Context)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn(s.ctx)
	}()
}

// Close stops the background loops, waits for them, withdraws this replica's in-flight
// share and scrape leases where Redis is reachable, and closes the connection. It is
// idempotent.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.cancel()
		s.wg.Wait()
		if s.rdb != nil {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), s.cfg.CommandTimeout)
			s.scrapes.release(ctx)
			cancel()
			if cerr := s.rdb.Close(); cerr != nil {
				err = fmt.Errorf("closing redis client: %w", cerr)
			}
		}
	})
	return err
}

// Memory reports whether s keeps state in process only (-R memory).
func (s *Store) Memory() bool { return s.rdb == nil }

// Connected reports whether Redis answered the last health probe. It is always true in
// memory mode, where there is nothing to lose. Cheap; for /load-stats and readiness.
func (s *Store) Connected() bool { return s.health.connected.Load() }

// URL is the URL s was opened with. Print it with Redacted (String does that too).
func (s *Store) URL() URL { return s.url }

// ReplicaID is the name of this replica in shared state.
func (s *Store) ReplicaID() string { return s.cfg.ReplicaID }

// redis is the client for the package's Redis-backed stores; nil in memory mode.
// Callers must treat every error as "Redis unavailable" and degrade, never fail startup.
func (s *Store) redis() redis.UniversalClient { return s.rdb }

// newClient builds the go-redis client for u. Connections are made on first use.
func newClient(u URL, cfg Config) (redis.UniversalClient, error) {
	var tlsCfg *tls.Config
	if u.TLS && len(u.Addrs) > 0 {
		host, _, err := net.SplitHostPort(u.Addrs[0])
		if err != nil {
			host = u.Addrs[0]
		}
		tlsCfg = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	// Fail fast: our loops retry with their own back-off and the request path never
	// waits on Redis, so go-redis' own retries would only delay the fallback.
	const noRetries = -1
	switch u.Mode {
	case ModeSingle:
		if len(u.Addrs) != 1 {
			return nil, fmt.Errorf("%w: a single server needs exactly one address", ErrInvalidURL)
		}
		return redis.NewClient(&redis.Options{
			Network: u.Network, Addr: u.Addrs[0],
			Username: u.Username, Password: u.Password, DB: u.DB, TLSConfig: tlsCfg,
			DialTimeout: cfg.DialTimeout, ReadTimeout: cfg.IOTimeout, WriteTimeout: cfg.IOTimeout,
			ContextTimeoutEnabled: true, MaxRetries: noRetries, DialerRetries: 1,
			PoolSize: cfg.PoolSize, DisableIdentity: true,
		}), nil
	case ModeSentinel:
		// The URL's credentials are for the master; sentinels are reached without AUTH,
		// as in most deployments (a password sentinels do not expect fails the dial).
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: u.MasterName, SentinelAddrs: u.Addrs,
			Username: u.Username, Password: u.Password, DB: u.DB, TLSConfig: tlsCfg,
			DialTimeout: cfg.DialTimeout, ReadTimeout: cfg.IOTimeout, WriteTimeout: cfg.IOTimeout,
			ContextTimeoutEnabled: true, MaxRetries: noRetries, DialerRetries: 1,
			PoolSize: cfg.PoolSize, DisableIdentity: true,
		}), nil
	case ModeCluster:
		// MaxRetries stays 0: the cluster client then follows MOVED/ASK itself and
		// does not retry anything else.
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: u.Addrs, Username: u.Username, Password: u.Password, TLSConfig: tlsCfg,
			DialTimeout: cfg.DialTimeout, ReadTimeout: cfg.IOTimeout, WriteTimeout: cfg.IOTimeout,
			ContextTimeoutEnabled: true, DialerRetries: 1,
			PoolSize: cfg.PoolSize, DisableIdentity: true,
		}), nil
	default:
		return nil, fmt.Errorf("%w: unknown mode %s", ErrInvalidURL, u.Mode)
	}
}
