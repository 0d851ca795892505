package state

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"
)

// Metrics are the state package's Prometheus series. Build one per registry with
// NewMetrics; Open does this itself. Safe for concurrent use.
type Metrics struct {
	// CommandDuration is the latency of Redis commands and pipelines, by command.
	CommandDuration *prometheus.HistogramVec
	// Errors counts failed Redis commands by command (a missing key is not an error).
	Errors *prometheus.CounterVec
	// Connected is 1 while the last health probe reached Redis (always 1 in memory mode).
	Connected prometheus.Gauge
	// Disconnects counts transitions from connected to unreachable.
	Disconnects prometheus.Counter
	// Resyncs counts republications of local state after a reconnect or a data loss.
	Resyncs prometheus.Counter
	// PrefixLookups counts prefix lookups by where the answer came from: "redis",
	// "local" (Redis unavailable or not configured) or "budget" (Redis too slow).
	PrefixLookups *prometheus.CounterVec
	// PrefixRecordsDropped counts ownership records dropped because the write queue was full.
	PrefixRecordsDropped prometheus.Counter
	// PrefixCacheBlocks is the number of blocks in the local ownership cache.
	PrefixCacheBlocks prometheus.Gauge
	// ScrapeClaims counts scrape-lease decisions: "mine" (this replica scrapes), "shared"
	// (another replica's result is used) or "local" (Redis unavailable: scrape anyway).
	ScrapeClaims *prometheus.CounterVec
}

// NewMetrics registers the state series on reg (nil means a private registry, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	f := promauto.With(reg)
	return &Metrics{
		CommandDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "vllm_proxy", Subsystem: "redis", Name: "command_duration_seconds",
			Help:    "Latency of Redis commands and pipelines, by command.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"command"}),
		Errors: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vllm_proxy", Subsystem: "redis", Name: "errors_total",
			Help: "Failed Redis commands, by command.",
		}, []string{"command"}),
		Connected: f.NewGauge(prometheus.GaugeOpts{
			Namespace: "vllm_proxy", Subsystem: "redis", Name: "connected",
			Help: "1 while Redis answered the last health probe.",
		}),
		Disconnects: f.NewCounter(prometheus.CounterOpts{
			Namespace: "vllm_proxy", Subsystem: "redis", Name: "disconnects_total",
			Help: "Transitions from connected to unreachable.",
		}),
		Resyncs: f.NewCounter(prometheus.CounterOpts{
			Namespace: "vllm_proxy", Subsystem: "redis", Name: "resyncs_total",
			Help: "Republications of local state after a reconnect or a loss of Redis data.",
		}),
		PrefixLookups: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vllm_proxy", Subsystem: "state", Name: "prefix_lookups_total",
			Help: "Prefix ownership lookups by source of the answer (redis, local, budget).",
		}, []string{"source"}),
		PrefixRecordsDropped: f.NewCounter(prometheus.CounterOpts{
			Namespace: "vllm_proxy", Subsystem: "state", Name: "prefix_records_dropped_total",
			Help: "Prefix ownership records dropped because the write queue was full.",
		}),
		PrefixCacheBlocks: f.NewGauge(prometheus.GaugeOpts{
			Namespace: "vllm_proxy", Subsystem: "state", Name: "prefix_cache_blocks",
			Help: "Blocks held in the local prefix ownership cache.",
		}),
		ScrapeClaims: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vllm_proxy", Subsystem: "state", Name: "scrape_claims_total",
			Help: "Scrape lease decisions (mine, shared, local).",
		}, []string{"result"}),
	}
}

// levelLoud is logging.LevelLoud (state is a leaf and does not import logging): at this
// level every Redis command's outcome is logged.
const levelLoud = slog.Level(-12)

// metricsHook times every command and pipeline, counts failures and, at the Loud level,
// logs each outcome (command name, duration and error only: arguments may hold passwords
// and payloads). Script calls are labelled with the script's name instead of "evalsha",
// so the label set stays small and says which invariant was slow.
type metricsHook struct {
	m       *Metrics
	log     *slog.Logger
	scripts map[string]string // sha1 or source → name
}

var _ redis.Hook = metricsHook{}

func (h metricsHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		start := time.Now()
		c, err := next(ctx, network, addr)
		h.observe(ctx, "dial", start, err)
		return c, err
	}
}

func (h metricsHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		h.observe(ctx, h.name(cmd), start, err)
		return err
	}
}

func (h metricsHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		h.observe(ctx, "pipeline", start, err)
		return err
	}
}

func (h metricsHook) observe(ctx context.Context, name string, start time.Time, err error) {
	took := time.Since(start)
	h.m.CommandDuration.WithLabelValues(name).Observe(took.Seconds())
	failed := err != nil && !errors.Is(err, redis.Nil)
	if failed {
		h.m.Errors.WithLabelValues(name).Inc()
	}
	if h.log.Enabled(ctx, levelLoud) {
		attrs := []slog.Attr{slog.String("command", name), slog.Duration("took", took)}
		if failed {
			attrs = append(attrs, slog.Any("error", err))
		}
		h.log.LogAttrs(ctx, levelLoud, "redis command", attrs...)
	}
}

// name is the command's label: lower-case command name, or "script:NAME" for our scripts.
// Only names of commands this package sends can appear, so cardinality is bounded.
func (h metricsHook) name(cmd redis.Cmder) string {
	name := strings.ToLower(cmd.Name())
	switch name {
	case "evalsha", "eval", "evalsha_ro", "eval_ro":
		args := cmd.Args()
		if len(args) > 1 {
			if s, ok := args[1].(string); ok {
				if n, ok := h.scripts[s]; ok {
					return "script:" + n
				}
			}
		}
		return "script:other"
	}
	return name
}
