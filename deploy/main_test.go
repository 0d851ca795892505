package deploy

import (
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) {
		if buildOnce.path != "" {
			_ = os.RemoveAll(filepath.Dir(buildOnce.path)) // the binary buildProxy built
		}
	}))
}
