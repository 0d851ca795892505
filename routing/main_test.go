package routing

import (
	"testing"

	"github.com/vllm-proxy/vllm-proxy/state"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	state.RouteDriverLogs(nil) // tests kill Redis: keep go-redis' dial errors off stderr
	goleak.VerifyTestMain(m)
}
