package state

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// RouteDriverLogs sends go-redis' own log lines (which otherwise go to stderr, one per
// failed dial while Redis is down) to log at debug level, so an outage shows as the
// Store's single warning. go-redis keeps one logger per process, so this sets process-wide
// state: only cmd calls it, once, at startup (and tests, in TestMain).
func RouteDriverLogs(log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	redis.SetLogger(driverLogger{log: log.With("component", "redis-driver")})
}

type driverLogger struct{ log *slog.Logger }

func (d driverLogger) Printf(ctx context.Context, format string, v ...any) {
	if !d.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	d.log.DebugContext(ctx, "redis driver message", "detail", fmt.Sprintf(format, v...))
}
