package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vllm-proxy/vllm-proxy/auth"
	"github.com/vllm-proxy/vllm-proxy/proxy"
)

// authSettings are the API-key settings, read from the environment (keys never come
// from flags: command lines show in ps).
type authSettings struct {
	keys          []string
	exempt        []string // nil = auth.DefaultExempt()
	backendAPIKey string
}

// loadAuth reads VLLM_PXY_API_KEYS (comma-separated), VLLM_PXY_API_KEYS_FILE (one key
// per line), VLLM_PXY_AUTH_EXEMPT and VLLM_PXY_BACKEND_API_KEY. Errors never quote keys.
func loadAuth(getenv func(string) (string, bool)) (authSettings, error) {
	var a authSettings
	if v, ok := getenv("VLLM_PXY_API_KEYS"); ok {
		keys, err := auth.ParseKeyList(v)
		if err != nil {
			return a, fmt.Errorf("VLLM_PXY_API_KEYS: %w", err)
		}
		a.keys = append(a.keys, keys...)
	}
	if path, ok := getenv("VLLM_PXY_API_KEYS_FILE"); ok && path != "" {
		f, err := os.Open(path) // #nosec G304 -- the operator names the key file
		if err != nil {
			return a, fmt.Errorf("opening the api keys file: %w", err)
		}
		keys, err := auth.ParseKeys(f)
		_ = f.Close()
		if err != nil {
			return a, fmt.Errorf("api keys file %s: %w", path, err)
		}
		a.keys = append(a.keys, keys...)
	}
	if v, ok := getenv("VLLM_PXY_AUTH_EXEMPT"); ok {
		a.exempt = []string{}
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				a.exempt = append(a.exempt, p)
			}
		}
	}
	a.backendAPIKey, _ = getenv("VLLM_PXY_BACKEND_API_KEY")
	return a, nil
}

// backendAuth is what the proxy sends backends: never the client's key when keys are on.
func (a authSettings) backendAuth() proxy.BackendAuth {
	return proxy.BackendAuth{StripClient: len(a.keys) > 0, APIKey: a.backendAPIKey}
}

// wrap puts the key check in front of h when keys are configured.
func (a authSettings) wrap(h http.Handler, log *slog.Logger, reg prometheus.Registerer) (http.Handler, error) {
	if len(a.keys) == 0 {
		return h, nil
	}
	authn, err := auth.New(auth.Config{Keys: a.keys, Exempt: a.exempt}, log, reg)
	if err != nil {
		return nil, fmt.Errorf("api keys: %w", err)
	}
	log.Info("api keys on", slog.Int("keys", len(a.keys)))
	return authn.Middleware(h), nil
}
