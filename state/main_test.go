package state_test

import (
	"log/slog"
	"testing"

	"github.com/vllm-proxy/vllm-proxy/state"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	state.RouteDriverLogs(slog.New(slog.DiscardHandler)) // one warning per outage, not one per dial
	goleak.VerifyTestMain(m)
}
