package state

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Mode says how a Redis URL is reached.
type Mode int

const (
	// ModeMemory keeps state in process: one replica, no Redis ("memory").
	ModeMemory Mode = iota
	// ModeSingle is one Redis server over TCP (redis://, rediss://) or a unix socket (unix://).
	ModeSingle
	// ModeSentinel finds the master through Redis Sentinel (redis+sentinel://).
	ModeSentinel
	// ModeCluster talks to a Redis Cluster (redis+cluster://).
	ModeCluster
)

// String names the mode as the docs do.
func (m Mode) String() string {
	switch m {
	case ModeMemory:
		return "memory"
	case ModeSingle:
		return "single"
	case ModeSentinel:
		return "sentinel"
	case ModeCluster:
		return "cluster"
	default:
		return "Mode(" + strconv.Itoa(int(m)) + ")"
	}
}

// Default ports filled in when a host has none.
const (
	DefaultPort         = "6379"
	DefaultSentinelPort = "26379"
)

// URLExample is a valid -R value shown in error messages.
const URLExample = "redis://:secret@redis.example:6379/0"

// redactedPassword replaces any password in printed URLs.
const redactedPassword = "xxxxx"

// ErrInvalidURL is wrapped by every ParseURL error. Its messages never contain any part of
// the input except a well-formed scheme, so they cannot leak a password; callers that want
// to show the offending value use RedactString.
var ErrInvalidURL = errors.New("invalid redis url")

// URL is a parsed -R value. It is a plain value: copy it freely.
type URL struct {
	Mode       Mode
	Network    string   // "tcp" or "unix"; empty for ModeMemory
	Addrs      []string // host:port (several for sentinel/cluster), or the socket path for unix
	Username   string
	Password   string
	DB         int
	TLS        bool   // rediss://
	MasterName string // sentinel only
}

// ParseURL parses a -R value:
//
//	local                                   redis://localhost:6379/0
//	memory                                  in-process state, no Redis
//	redis://[user:pass@]host[:port][/db]    one server (port 6379, db 0 by default)
//	rediss://[user:pass@]host[:port][/db]   the same over TLS
//	unix://[user:pass@]/path[?db=N]         one server on a unix socket
//	redis+sentinel://[user:pass@]h:p[,h:p…]/MASTER[/db]   sentinels (port 26379 by default)
//	redis+cluster://[user:pass@]h:p[,h:p…]                 cluster seed nodes (db is always 0)
//
// User and password are percent-decoded. Errors wrap ErrInvalidURL and never contain the password.
func ParseURL(s string) (URL, error) {
	switch strings.ToLower(s) {
	case "":
		return URL{}, invalidf("empty value")
	case "local":
		return URL{Mode: ModeSingle, Network: "tcp", Addrs: []string{"localhost:" + DefaultPort}}, nil
	case "memory":
		return URL{Mode: ModeMemory}, nil
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return URL{}, invalidf("missing scheme (want redis://, rediss://, unix://, redis+sentinel:// or redis+cluster://, or local or memory)")
	}
	if strings.ContainsAny(rest, "#") {
		return URL{}, invalidf("fragments (#) are not allowed")
	}
	scheme = strings.ToLower(scheme)
	if strings.ContainsAny(rest, " \t\r\n\x00") {
		return URL{}, invalidf("whitespace or control characters are not allowed")
	}
	var u URL
	authority, pathQuery := splitAuthority(rest)
	hosts := authority
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		if err := u.setUserinfo(authority[:i]); err != nil {
			return URL{}, err
		}
		hosts = authority[i+1:]
	}
	path, rawQuery, hasQuery := strings.Cut(pathQuery, "?")
	switch scheme {
	case "redis", "rediss":
		u.Mode, u.Network, u.TLS = ModeSingle, "tcp", scheme == "rediss"
		if err := u.setHosts(hosts, DefaultPort, false); err != nil {
			return URL{}, err
		}
		if hasQuery {
			return URL{}, invalidf("query parameters are not allowed for %s:// (put the db in the path)", scheme)
		}
		db, err := parseDBPath(path)
		if err != nil {
			return URL{}, err
		}
		u.DB = db
	case "unix":
		u.Mode, u.Network = ModeSingle, "unix"
		if hosts != "" {
			return URL{}, invalidf("unix:// takes no host; write unix:///path/to/redis.sock")
		}
		p, err := url.PathUnescape(path)
		if err != nil || p == "" || !strings.HasPrefix(p, "/") || p == "/" {
			return URL{}, invalidf("unix:// needs an absolute socket path, e.g. unix:///run/redis.sock?db=0")
		}
		u.Addrs = []string{p}
		if hasQuery {
			db, err := parseDBQuery(rawQuery)
			if err != nil {
				return URL{}, err
			}
			u.DB = db
		}
	case "redis+sentinel":
		u.Mode, u.Network = ModeSentinel, "tcp"
		if err := u.setHosts(hosts, DefaultSentinelPort, true); err != nil {
			return URL{}, err
		}
		if hasQuery {
			return URL{}, invalidf("query parameters are not allowed for redis+sentinel://")
		}
		if err := u.setSentinelPath(path); err != nil {
			return URL{}, err
		}
	case "redis+cluster":
		u.Mode, u.Network = ModeCluster, "tcp"
		if err := u.setHosts(hosts, DefaultPort, true); err != nil {
			return URL{}, err
		}
		if hasQuery {
			return URL{}, invalidf("query parameters are not allowed for redis+cluster://")
		}
		db, err := parseDBPath(path)
		if err != nil {
			return URL{}, err
		}
		if db != 0 {
			return URL{}, invalidf("redis cluster only has database 0")
		}
	default:
		if isCleanScheme(scheme) {
			return URL{}, invalidf("unsupported scheme %q (want redis, rediss, unix, redis+sentinel or redis+cluster)", scheme)
		}
		return URL{}, invalidf("malformed scheme (want redis, rediss, unix, redis+sentinel or redis+cluster)")
	}
	return u, nil
}

// Redacted returns the canonical form of u with any password replaced by "xxxxx".
// ParseURL(u.Redacted()) yields u with Password "xxxxx".
func (u URL) Redacted() string {
	var b strings.Builder
	switch u.Mode {
	case ModeMemory:
		return "memory"
	case ModeSingle:
		switch {
		case u.Network == "unix":
			b.WriteString("unix://")
		case u.TLS:
			b.WriteString("rediss://")
		default:
			b.WriteString("redis://")
		}
	case ModeSentinel:
		b.WriteString("redis+sentinel://")
	case ModeCluster:
		b.WriteString("redis+cluster://")
	default:
		return u.Mode.String()
	}
	if u.Username != "" || u.Password != "" {
		var ui *url.Userinfo
		if u.Password != "" {
			ui = url.UserPassword(u.Username, redactedPassword)
		} else {
			ui = url.User(u.Username)
		}
		b.WriteString(ui.String())
		b.WriteByte('@')
	}
	if u.Network == "unix" {
		p := ""
		if len(u.Addrs) > 0 {
			p = (&url.URL{Path: u.Addrs[0]}).EscapedPath()
		}
		fmt.Fprintf(&b, "%s?db=%d", p, u.DB)
		return b.String()
	}
	b.WriteString(strings.Join(u.Addrs, ","))
	switch u.Mode {
	case ModeSentinel:
		fmt.Fprintf(&b, "/%s/%d", url.PathEscape(u.MasterName), u.DB)
	case ModeSingle:
		fmt.Fprintf(&b, "/%d", u.DB)
	}
	return b.String()
}

// String is Redacted, so printing a URL with %v or %s never shows its password.
func (u URL) String() string { return u.Redacted() }

// GoString is Redacted too, so %#v does not show the password either.
func (u URL) GoString() string { return "state.URL(" + strconv.Quote(u.Redacted()) + ")" }

// RedactString masks the password in s even when s does not parse, for error messages
// about invalid values: everything between the first ':' of the user info and its last '@'
// becomes "xxxxx".
func RedactString(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		// No scheme: "user:pass@host" still deserves masking.
		scheme, rest = "", s
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return s
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return s
	}
	prefix := ""
	if ok {
		prefix = scheme + "://"
	}
	return prefix + user + ":" + redactedPassword + rest[at:]
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidURL}, args...)...)
}

// splitAuthority splits "userinfo@hosts/path?query" after the scheme. The user info may
// hold '/' or '?' only percent-encoded, as in RFC 3986, but a password containing them
// raw is common enough that the authority runs to the last '@' when there is one.
func splitAuthority(rest string) (authority, pathQuery string) {
	start := 0
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		start = at
	}
	if i := strings.IndexAny(rest[start:], "/?"); i >= 0 {
		return rest[:start+i], rest[start+i:]
	}
	return rest, ""
}

func (u *URL) setUserinfo(ui string) error {
	user, pass, hasPass := strings.Cut(ui, ":")
	var err error
	if u.Username, err = url.PathUnescape(user); err != nil {
		return invalidf("bad percent-encoding in the user name")
	}
	if hasPass {
		if u.Password, err = url.PathUnescape(pass); err != nil {
			return invalidf("bad percent-encoding in the password")
		}
	}
	return nil
}

func (u *URL) setHosts(hosts, defaultPort string, many bool) error {
	if hosts == "" {
		return invalidf("missing host")
	}
	parts := strings.Split(hosts, ",")
	if len(parts) > 1 && !many {
		return invalidf("only redis+sentinel:// and redis+cluster:// take several hosts")
	}
	for _, h := range parts {
		addr, err := hostPort(h, defaultPort)
		if err != nil {
			return err
		}
		u.Addrs = append(u.Addrs, addr)
	}
	return nil
}

// hostPort validates one host[:port] and fills in the default port.
func hostPort(h, defaultPort string) (string, error) {
	if h == "" {
		return "", invalidf("empty host in host list")
	}
	host, port := h, defaultPort
	switch {
	case strings.HasPrefix(h, "["):
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", invalidf("unclosed '[' in IPv6 host")
		}
		host = h[1:end]
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil {
			return "", invalidf("bad IPv6 address in brackets")
		}
		switch after := h[end+1:]; {
		case after == "":
		case strings.HasPrefix(after, ":"):
			port = after[1:]
		default:
			return "", invalidf("unexpected text after IPv6 address")
		}
	case strings.Count(h, ":") > 1:
		return "", invalidf("IPv6 hosts must be in brackets, e.g. [::1]:6379")
	case strings.Contains(h, ":"):
		host, port, _ = strings.Cut(h, ":")
		if !validHostname(host) {
			return "", invalidf("bad host name (letters, digits, '.', '-', '_' only)")
		}
	default:
		if !validHostname(host) {
			return "", invalidf("bad host name (letters, digits, '.', '-', '_' only)")
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || !allDigits(port) {
		return "", invalidf("port must be a number from 1 to 65535")
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, c := range h {
		if !isHostChar(c) {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// parseDB parses a database number: decimal digits, 0 to MaxInt32.
func parseDB(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || !allDigits(s) || n > math.MaxInt32 {
		return 0, invalidf("database must be a non-negative integer")
	}
	return n, nil
}

func parseDBPath(path string) (int, error) {
	switch {
	case path == "" || path == "/":
		return 0, nil
	case strings.Count(path, "/") > 1:
		return 0, invalidf("path must be just /DB, e.g. /0")
	}
	return parseDB(path[1:])
}

func parseDBQuery(raw string) (int, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return 0, invalidf("malformed query")
	}
	db := 0
	for k, v := range q {
		if k != "db" {
			return 0, invalidf("unknown query parameter (only db is allowed)")
		}
		if len(v) != 1 {
			return 0, invalidf("db given more than once")
		}
		if db, err = parseDB(v[0]); err != nil {
			return 0, err
		}
	}
	return db, nil
}

func (u *URL) setSentinelPath(path string) error {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if path == "" || parts[0] == "" {
		return invalidf("redis+sentinel:// needs a master name, e.g. redis+sentinel://h1:26379,h2:26379/mymaster/0")
	}
	if len(parts) > 2 {
		return invalidf("path must be /MASTER or /MASTER/DB")
	}
	name, err := url.PathUnescape(parts[0])
	if err != nil || name == "" {
		return invalidf("bad percent-encoding in the master name")
	}
	u.MasterName = name
	if len(parts) == 2 && parts[1] != "" {
		db, err := parseDB(parts[1])
		if err != nil {
			return err
		}
		u.DB = db
	}
	return nil
}

func isCleanScheme(s string) bool {
	if s == "" || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range s {
		if !isSchemeChar(c) {
			return false
		}
	}
	return true
}

func isHostChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_'
}

func isSchemeChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'
}
