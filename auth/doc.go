// Package auth is the proxy's optional API-key check. It is off unless keys are
// configured: cmd then wraps the whole HTTP mux in [Authenticator.Middleware], which
// requires "Authorization: Bearer KEY" (or "X-Api-Key: KEY") on every path except the
// exempt ones, answers an OpenAI-shaped 401 otherwise, and puts the caller's tenant in the
// request context ([Tenant]).
//
// A tenant is a stable, non-secret id derived from the key (a prefix of its SHA-256), so a
// key configured in plain text and the same key configured as "sha256:<hex>" are the same
// tenant. Keys themselves are never logged, stored or forwarded by this package.
package auth
