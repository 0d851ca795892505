package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Config says which proxy to talk to and how.
type Config struct {
	// URL is the proxy's base URL, without /v1 (e.g. http://localhost:8010). Required.
	URL string
	// APIKey, when set, is sent as "Authorization: Bearer APIKey".
	APIKey string
	// Timeout bounds each request that is not a file transfer. Default 30s.
	Timeout time.Duration
	// HTTPClient sends the requests. Default: a client without a timeout of its own
	// (file transfers may take long; contexts bound them).
	HTTPClient *http.Client
}

// Validate reports every problem of the configuration.
func (c Config) Validate() error {
	var errs []error
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		errs = append(errs, errors.New("url: required, e.g. http://localhost:8010"))
	case err != nil:
		errs = append(errs, fmt.Errorf("url %q: %w", c.URL, err))
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		errs = append(errs, fmt.Errorf("url %q: want http://host:port or https://host:port", c.URL))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %s: must not be negative", c.Timeout))
	}
	return errors.Join(errs...)
}

// Client calls one proxy. It is safe for concurrent use.
type Client struct {
	base    string
	key     string
	timeout time.Duration
	hc      *http.Client
}

// New returns a client for cfg, with defaults applied.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{base: strings.TrimSuffix(cfg.URL, "/"), key: cfg.APIKey, timeout: cfg.Timeout, hc: cfg.HTTPClient}
	if c.timeout == 0 {
		c.timeout = 30 * time.Second
	}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	return c, nil
}

// URL is the proxy's base URL.
func (c *Client) URL() string { return c.base }

// ErrNotFound is wrapped by errors for a 404 (no such file or batch).
var ErrNotFound = errors.New("not found")

// APIError is an error answer of the proxy, decoded from its OpenAI-shaped body when it
// has one.
type APIError struct {
	Status  int    // HTTP status code
	Message string // error.message, or the start of the body when it was not JSON
	Type    string // error.type
	Code    string // error.code
	Param   string // error.param
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Param != "" {
		return fmt.Sprintf("%d %s (param %s)", e.Status, msg, e.Param)
	}
	return fmt.Sprintf("%d %s", e.Status, msg)
}

// Unwrap makes errors.Is(err, ErrNotFound) hold for a 404.
func (e *APIError) Unwrap() error {
	if e.Status == http.StatusNotFound {
		return ErrNotFound
	}
	return nil
}

// DecodeError builds the APIError of a response with status and body.
func DecodeError(status int, body []byte) *APIError {
	e := &APIError{Status: status}
	var env struct {
		Error *struct {
			Message string          `json:"message"`
			Type    string          `json:"type"`
			Code    json.RawMessage `json:"code"`
			Param   json.RawMessage `json:"param"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err == nil && env.Error != nil {
		e.Message, e.Type = env.Error.Message, env.Error.Type
		e.Code, e.Param = rawString(env.Error.Code), rawString(env.Error.Param)
		return e
	}
	e.Message = strings.TrimSpace(string(body))
	if len(e.Message) > 200 {
		e.Message = e.Message[:200] + "…"
	}
	return e
}

// rawString is a JSON string's value, a number's text, or "" for null and anything else.
func rawString(r json.RawMessage) string {
	var s string
	if json.Unmarshal(r, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(r, &n) == nil {
		return n.String()
	}
	return ""
}

// request sends method path with body and returns the response when it is 2xx; any
// other status becomes an *APIError. The caller closes the body.
func (c *Client) request(ctx context.Context, method, path, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("building %s %s: %w", method, path, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err // it repeats the method and URL said below
		}
		return nil, fmt.Errorf("%s %s%s: %w", method, c.base, path, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, fmt.Errorf("%s %s%s: %w", method, c.base, path, DecodeError(resp.StatusCode, b))
	}
	return resp, nil
}

// doJSON sends in (when not nil) as JSON and decodes the 2xx answer into out, within the
// client's timeout.
func (c *Client) doJSON(ctx context.Context, method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding %s %s: %w", method, path, err)
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	resp, err := c.request(ctx, method, path, ct, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return fmt.Errorf("decoding the answer to %s %s: %w", method, path, err)
	}
	return nil
}

// decodeBody decodes a JSON response body into out.
func decodeBody(resp *http.Response, out any) error {
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return fmt.Errorf("decoding the answer of %s: %w", resp.Request.URL.Path, err)
	}
	return nil
}
