package proxy

import (
	"net/http"
	"strings"
)

// BackendAuth says which credentials reach the backends. The zero value forwards the
// client's headers untouched (no proxy keys, no backend key: the proxy is transparent).
type BackendAuth struct {
	// StripClient removes the client's Authorization and X-Api-Key headers from every
	// request to a backend. cmd sets it when the proxy's own API keys are on, so a
	// client's proxy key never reaches a backend. Default false.
	StripClient bool
	// APIKey, when set, is sent to every backend as "Authorization: Bearer APIKey"
	// (vLLM's --api-key), replacing whatever the client sent; batch lines get it too.
	// Default "" (none).
	APIKey string
}

// apply sets the outbound credentials on h, the header of a request to a backend.
func (b BackendAuth) apply(h http.Header) {
	if b.StripClient || b.APIKey != "" {
		h.Del("Authorization")
		h.Del("X-Api-Key")
	}
	if b.APIKey != "" {
		h.Set("Authorization", "Bearer "+b.APIKey)
	}
}

// problems lists what is wrong with b; messages never repeat the key.
func (b BackendAuth) problems() []string {
	if strings.ContainsFunc(b.APIKey, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return []string{"backend_api_key must not contain white space or control characters"}
	}
	return nil
}
