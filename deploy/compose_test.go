package deploy

import (
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// composeFile is the Compose file under test, from this package's directory.
const composeFile = "../docker-compose.yml"

// loadCompose loads and validates path (schema, interpolation, consistency) with the given
// profiles and interpolation variables, as `docker compose --profile ...` would, without
// a Docker engine or the process environment.
func loadCompose(t *testing.T, path string, profiles []string, env ...string) (*types.Project, error) {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{abs},
		cli.WithName("vllm-proxy"),
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		cli.WithEnv(env),
		cli.WithProfiles(profiles),
		cli.WithInterpolation(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(t.Context())
}

func TestComposeProfiles(t *testing.T) {
	proxies := []string{"proxy-1", "proxy-2"}
	sims := []string{"sim-1", "sim-2", "sim-3"}
	for _, tc := range []struct {
		name     string
		profiles []string
		env      []string
		want     []string // services besides redis and the proxies
		backends []string // hosts the proxies are pointed at
	}{
		{"default", nil, nil, sims, sims},
		{"gpu", []string{"gpu"}, []string{"VLLM_PXY_BACKENDS=http://vllm-1:8000,http://vllm-2:8000"},
			append(slices.Clone(sims), "vllm-1", "vllm-2"), []string{"vllm-1", "vllm-2"}},
		{"monitoring", []string{"monitoring"}, nil, append(slices.Clone(sims), "prometheus", "grafana", "redis-exporter"), sims},
		{"all", []string{"gpu", "monitoring"}, nil,
			append(slices.Clone(sims), "vllm-1", "vllm-2", "prometheus", "grafana", "redis-exporter"), sims},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := loadCompose(t, composeFile, tc.profiles, tc.env...)
			if err != nil {
				t.Fatalf("loading %s: %v", composeFile, err)
			}
			want := append(append([]string{"redis"}, proxies...), tc.want...)
			got := p.ServiceNames()
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("services = %v, want %v", got, want)
			}
			for _, name := range proxies {
				checkProxy(t, p, name, tc.backends)
			}
			checkRedis(t, p)
			checkBindMounts(t, p)
		})
	}
}

// checkProxy: the proxy uses the shared Redis, is pointed at backends that are services
// of the project on the port they listen on, and drains before compose kills it.
func checkProxy(t *testing.T, p *types.Project, name string, wantHosts []string) {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatal(err)
	}
	env := func(k string) string {
		if v := s.Environment[k]; v != nil {
			return *v
		}
		return ""
	}
	if r := env("VLLM_PXY_REDIS"); !strings.HasPrefix(r, "redis://redis:6379") {
		t.Errorf("%s: VLLM_PXY_REDIS = %q, want the redis service", name, r)
	}
	if _, ok := s.DependsOn["redis"]; !ok {
		t.Errorf("%s does not wait for redis", name)
	}
	var hosts []string
	for _, b := range strings.Split(env("VLLM_PXY_BACKENDS"), ",") {
		u, err := url.Parse(b)
		if err != nil || u.Host == "" {
			t.Errorf("%s: backend %q is not a URL", name, b)
			continue
		}
		hosts = append(hosts, u.Hostname())
		if _, err := p.GetService(u.Hostname()); err != nil {
			t.Errorf("%s: backend %s is not a service of this profile", name, u.Host)
		}
	}
	if !slices.Equal(hosts, wantHosts) {
		t.Errorf("%s: backends %v, want %v", name, hosts, wantHosts)
	}
	if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= 30*time.Second {
		t.Errorf("%s: stop_grace_period %v must exceed --shutdown-timeout 30s", name, s.StopGracePeriod)
	}
	if len(s.Ports) != 1 || s.Ports[0].Target != 8010 {
		t.Errorf("%s: ports %+v, want one published port to 8010", name, s.Ports)
	}
}

// checkRedis: AOF on, noeviction, a maxmemory, data on a volume.
func checkRedis(t *testing.T, p *types.Project) {
	t.Helper()
	s, err := p.GetService("redis")
	if err != nil {
		t.Fatal(err)
	}
	cmd := strings.Join(s.Command, " ")
	for _, want := range []string{"--appendonly yes", "--maxmemory-policy noeviction", "--maxmemory "} {
		if !strings.Contains(cmd, want) {
			t.Errorf("redis command %q lacks %q", cmd, want)
		}
	}
	if len(s.Volumes) == 0 || s.Volumes[0].Target != "/data" || s.Volumes[0].Type != types.VolumeTypeVolume {
		t.Errorf("redis volumes %+v, want a named volume on /data", s.Volumes)
	}
	if s.HealthCheck == nil {
		t.Error("redis has no healthcheck, so depends_on service_healthy never holds")
	}
}

// checkBindMounts: every file or directory a service mounts from the repository exists.
func checkBindMounts(t *testing.T, p *types.Project) {
	t.Helper()
	for _, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s mounts %s: %v", s.Name, v.Source, err)
			}
		}
	}
}

// TestComposeValidationRejects shows the loader validates: an unknown key, a bad type and
// a dependency on a missing service fail.
func TestComposeValidationRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown key":     "services:\n  a:\n    image: x\n    comand: [y]\n",
		"bad type":        "services:\n  a:\n    image: x\n    ports: 8010\n",
		"missing service": "services:\n  a:\n    image: x\n    depends_on: [b]\n",
	} {
		path := filepath.Join(t.TempDir(), "compose.yml")
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := loadCompose(t, path, nil); err == nil {
			t.Errorf("%s: loaded without error", name)
		}
	}
}
