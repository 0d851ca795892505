package state

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParseURLValid(t *testing.T) {
	tests := []struct {
		in       string
		want     URL
		redacted string
	}{
		{"local", URL{Mode: ModeSingle, Network: "tcp", Addrs: []string{"localhost:6379"}}, "redis://localhost:6379/0"},
		{"LOCAL", URL{Mode: ModeSingle, Network: "tcp", Addrs: []string{"localhost:6379"}}, "redis://localhost:6379/0"},
		{"memory", URL{Mode: ModeMemory}, "memory"},
		{"Memory", URL{Mode: ModeMemory}, "memory"},
		{"redis://localhost", URL{Mode: ModeSingle, Network: "tcp", Addrs: []string{"localhost:6379"}}, "redis://localhost:6379/0"},
		{"redis://localhost/", URL{Mode: ModeSingle, Network: "tcp", Addrs: []string{"localhost:6379"}}, "redis://localhost:6379/0"},
		{"redis://10.0.0.1:7000/3", URL{Mode: ModeSingle, Network: "tcp", Addrs: []string{"10.0.0.1:7000"}, DB: 3}, "redis://10.0.0.1:7000/3"},
		{"REDIS://h:1/0", URL{Mode: ModeSingle, Network: "tcp", Addrs: []string{"h:1"}}, "redis://h:1/0"},
		{"redis://[::1]:6380/1", URL{Mode: ModeSingle, Network: "tcp", Addrs: []string{"[::1]:6380"}, DB: 1}, "redis://[::1]:6380/1"},
		{"redis://[::1]", URL{Mode: ModeSingle, Network: "tcp", Addrs: []string{"[::1]:6379"}}, "redis://[::1]:6379/0"},
		{"redis://:s3cret@h:6379/0", URL{Mode: ModeSingle, Network: "tcp", Addrs: []string{"h:6379"}, Password: "s3cret"}, "redis://:xxxxx@h:6379/0"},
		{"redis://alice:s3cret@h:6379/2", URL{Mode: ModeSingle, Network: "tcp", Addrs: []string{"h:6379"}, Username: "alice", Password: "s3cret", DB: 2}, "redis://alice:xxxxx@h:6379/2"},
		{"redis://alice@h", URL{Mode: ModeSingle, Network: "tcp", Addrs: []string{"h:6379"}, Username: "alice"}, "redis://alice@h:6379/0"},
		{"redis://al%40ice:p%3Aw%2Fd@h", URL{Mode: ModeSingle, Network: "tcp", Addrs: []string{"h:6379"}, Username: "al@ice", Password: "p:w/d"}, "redis://al%40ice:xxxxx@h:6379/0"},
		{"redis://u:pa/ss@h/1", URL{Mode: ModeSingle, Network: "tcp", Addrs: []string{"h:6379"}, Username: "u", Password: "pa/ss", DB: 1}, "redis://u:xxxxx@h:6379/1"},
		{"redis://u:p@ss@h/1", URL{Mode: ModeSingle, Network: "tcp", Addrs: []string{"h:6379"}, Username: "u", Password: "p@ss", DB: 1}, "redis://u:xxxxx@h:6379/1"},
		{"rediss://u:pw9@redis.example:6380/4", URL{Mode: ModeSingle, Network: "tcp", Addrs: []string{"redis.example:6380"}, Username: "u", Password: "pw9", DB: 4, TLS: true}, "rediss://u:xxxxx@redis.example:6380/4"},
		{"unix:///run/redis.sock", URL{Mode: ModeSingle, Network: "unix", Addrs: []string{"/run/redis.sock"}}, "unix:///run/redis.sock?db=0"},
		{"unix:///run/redis.sock?db=5", URL{Mode: ModeSingle, Network: "unix", Addrs: []string{"/run/redis.sock"}, DB: 5}, "unix:///run/redis.sock?db=5"},
		{"unix://:pw@/run/redis.sock?db=1", URL{Mode: ModeSingle, Network: "unix", Addrs: []string{"/run/redis.sock"}, Password: "pw", DB: 1}, "unix://:xxxxx@/run/redis.sock?db=1"},
		{"unix:///run/my%20redis.sock", URL{Mode: ModeSingle, Network: "unix", Addrs: []string{"/run/my redis.sock"}}, "unix:///run/my%20redis.sock?db=0"},
		{"redis+sentinel://s1:26379,s2:26380/mymaster", URL{Mode: ModeSentinel, Network: "tcp", Addrs: []string{"s1:26379", "s2:26380"}, MasterName: "mymaster"}, "redis+sentinel://s1:26379,s2:26380/mymaster/0"},
		{"redis+sentinel://u:p@s1,s2/mymaster/3", URL{Mode: ModeSentinel, Network: "tcp", Addrs: []string{"s1:26379", "s2:26379"}, Username: "u", Password: "p", MasterName: "mymaster", DB: 3}, "redis+sentinel://u:xxxxx@s1:26379,s2:26379/mymaster/3"},
		{"redis+sentinel://s1/mymaster/", URL{Mode: ModeSentinel, Network: "tcp", Addrs: []string{"s1:26379"}, MasterName: "mymaster"}, "redis+sentinel://s1:26379/mymaster/0"},
		{"redis+cluster://c1:7000,c2:7001,[::1]:7002", URL{Mode: ModeCluster, Network: "tcp", Addrs: []string{"c1:7000", "c2:7001", "[::1]:7002"}}, "redis+cluster://c1:7000,c2:7001,[::1]:7002"},
		{"redis+cluster://:pw@c1/0", URL{Mode: ModeCluster, Network: "tcp", Addrs: []string{"c1:6379"}, Password: "pw"}, "redis+cluster://:xxxxx@c1:6379"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseURL(tt.in)
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseURL(%q) = %#v\nwant %#v", tt.in, fields(got), fields(tt.want))
			}
			if r := got.Redacted(); r != tt.redacted {
				t.Errorf("Redacted() = %q, want %q", r, tt.redacted)
			}
			if s := fmt.Sprintf("%v|%s|%+v|%#v", got, got, got, got); got.Password != "" && strings.Contains(s, got.Password) {
				t.Errorf("formatting leaks the password: %s", s)
			}
			// The canonical form parses back to the same URL, password aside.
			back, err := ParseURL(got.Redacted())
			if err != nil {
				t.Fatalf("ParseURL(Redacted()=%q): %v", got.Redacted(), err)
			}
			want := got
			if want.Password != "" {
				want.Password = "xxxxx"
			}
			if !reflect.DeepEqual(back, want) {
				t.Errorf("round trip = %#v, want %#v", fields(back), fields(want))
			}
		})
	}
}

func TestParseURLInvalid(t *testing.T) {
	tests := []struct{ in, msg string }{
		{"", "empty value"},
		{"notaurl", "missing scheme"},
		{"localhost:6379", "missing scheme"},
		{"u:hunter2@host", "missing scheme"},
		{"http://h:80", `unsupported scheme "http"`},
		{"redis+foo://h", `unsupported scheme "redis+foo"`},
		{"r@d:x://h", "malformed scheme"},
		{"redis://", "missing host"},
		{"redis://:hunter2@", "missing host"},
		{"redis://:hunter2@/0", "missing host"},
		{"redis://h:0", "port must be a number from 1 to 65535"},
		{"redis://h:65536", "port must be a number from 1 to 65535"},
		{"redis://h:abc", "port must be a number from 1 to 65535"},
		{"redis://h:+1", "port must be a number from 1 to 65535"},
		{"redis://h:", "port must be a number from 1 to 65535"},
		{"redis://h/x", "database must be a non-negative integer"},
		{"redis://h/-1", "database must be a non-negative integer"},
		{"redis://h/99999999999", "database must be a non-negative integer"},
		{"redis://h/0/1", "path must be just /DB"},
		{"redis://h/0?db=1", "query parameters are not allowed"},
		{"redis://a,b", "only redis+sentinel:// and redis+cluster:// take several hosts"},
		{"redis://h#frag", "fragments (#) are not allowed"},
		{"redis://h o", "whitespace"},
		{"redis://::1", "IPv6 hosts must be in brackets"},
		{"redis://[::1", "unclosed '['"},
		{"redis://[1.2.3.4]", "bad IPv6 address"},
		{"redis://[::1]x", "unexpected text after IPv6 address"},
		{"redis://h%41st", "bad host name"},
		{"redis://:hunter2%zz@h", "bad percent-encoding in the password"},
		{"redis://us%zz:hunter2@h", "bad percent-encoding in the user name"},
		{"unix://", "unix:// needs an absolute socket path"},
		{"unix:///", "unix:// needs an absolute socket path"},
		{"unix://host/path", "unix:// takes no host"},
		{"unix:///s.sock?db=x", "database must be a non-negative integer"},
		{"unix:///s.sock?db=1&db=2", "db given more than once"},
		{"unix:///s.sock?timeout=1", "unknown query parameter"},
		{"unix:///s.sock?db=%zz", "malformed query"},
		{"redis+sentinel://s1", "needs a master name"},
		{"redis+sentinel://s1/", "needs a master name"},
		{"redis+sentinel://s1/m/0/1", "path must be /MASTER or /MASTER/DB"},
		{"redis+sentinel://s1/m/x", "database must be a non-negative integer"},
		{"redis+sentinel://s1,,s2/m", "empty host in host list"},
		{"redis+sentinel://s1/m%zz", "bad percent-encoding in the master name"},
		{"redis+sentinel://s1/m?x=1", "query parameters are not allowed"},
		{"redis+cluster://c1/1", "redis cluster only has database 0"},
		{"redis+cluster://c1?x", "query parameters are not allowed"},
		{"redis+cluster://c1:1,c2:99999", "port must be a number from 1 to 65535"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseURL(tt.in)
			if err == nil {
				t.Fatalf("ParseURL(%q) succeeded, want error containing %q", tt.in, tt.msg)
			}
			if !errors.Is(err, ErrInvalidURL) {
				t.Errorf("error %v does not wrap ErrInvalidURL", err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error = %q, want it to contain %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the password: %q", err)
			}
		})
	}
}

func TestRedactString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"notaurl", "notaurl"},
		{"redis://h:6379/0", "redis://h:6379/0"},
		{"redis://u@h", "redis://u@h"},
		{"redis://u:hunter2@h:bad", "redis://u:xxxxx@h:bad"},
		{"redis://:hunter2@h", "redis://:xxxxx@h"},
		{"redis://u:pa/ss@h/x", "redis://u:xxxxx@h/x"},
		{"u:hunter2@h", "u:xxxxx@h"},
		{"redis://u:p@ss@h", "redis://u:xxxxx@h"},
	}
	for _, tt := range tests {
		if got := RedactString(tt.in); got != tt.want {
			t.Errorf("RedactString(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestModeString(t *testing.T) {
	for m, want := range map[Mode]string{ModeMemory: "memory", ModeSingle: "single", ModeSentinel: "sentinel", ModeCluster: "cluster", Mode(9): "Mode(9)"} {
		if got := m.String(); got != want {
			t.Errorf("Mode(%d).String() = %q, want %q", int(m), got, want)
		}
	}
}

// fields prints a URL with its password, for test failure messages only.
func fields(u URL) string {
	return fmt.Sprintf("{Mode:%v Network:%q Addrs:%q Username:%q Password:%q DB:%d TLS:%v MasterName:%q}",
		u.Mode, u.Network, u.Addrs, u.Username, u.Password, u.DB, u.TLS, u.MasterName)
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"local", "memory", "notaurl", "redis://localhost:6379/0", "redis://:pw@h/1", "rediss://u:p@h:6380/2",
		"unix:///run/redis.sock?db=3", "unix://:pw@/s.sock", "redis+sentinel://u:p@s1:26379,s2/m/1",
		"redis+cluster://:pw@c1:7000,c2:7001", "redis://u:pa/ss@h", "redis://[::1]:6379", "redis://h:0", "u:pw@h",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURL(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidURL) {
				t.Fatalf("error %v does not wrap ErrInvalidURL", err)
			}
			// Errors carry no input except a clean scheme, which precedes "://" and so
			// cannot hold the password.
			if scheme, _, ok := strings.Cut(s, "://"); ok && strings.Contains(err.Error(), "\""+strings.ToLower(scheme)+"\"") {
				return
			}
			if strings.Contains(err.Error(), "\"") {
				t.Fatalf("error quotes part of the input: %v", err)
			}
			return
		}
		red := u.Redacted()
		if u.String() != red {
			t.Fatalf("String() %q != Redacted() %q", u.String(), red)
		}
		if u.Password != "" {
			// The redacted form must not depend on the password at all.
			other := u
			other.Password = "different"
			if other.Redacted() != red {
				t.Fatalf("Redacted depends on the password: %q vs %q", red, other.Redacted())
			}
			if !strings.Contains(red, "xxxxx") {
				t.Fatalf("Redacted %q does not mask the password", red)
			}
		}
		back, err := ParseURL(red)
		if err != nil {
			t.Fatalf("Redacted() %q of %q does not parse: %v", red, s, err)
		}
		if back.Redacted() != red {
			t.Fatalf("canonical form not stable: %q -> %q", red, back.Redacted())
		}
	})
}
