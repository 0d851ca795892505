package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// deployed is one vllm-proxy command line a deployment file runs.
type deployed struct {
	where string
	args  []string
	env   []string
}

// TestDeployedCommandsStart runs every vllm-proxy command of docker-compose.yml and of
// the Kubernetes Deployment (with its environment, Secret and ConfigMap file) through the
// real binary: each must pass its flag, environment and config-file checks, which exit 2
// before anything starts. A command still running after 3 s, or failing later for want
// of the network it expects (Redis at redis:6379), has passed them.
func TestDeployedCommandsStart(t *testing.T) {
	bin := buildProxy(t)
	var cmds []deployed

	p, err := loadCompose(t, composeFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Services {
		if s.Image != "vllm-proxy:dev" {
			continue
		}
		var env []string
		for k, v := range s.Environment {
			if v != nil {
				env = append(env, k+"="+*v)
			}
		}
		cmds = append(cmds, deployed{"docker-compose.yml " + s.Name, local(s.Command), env})
	}

	ms := loadManifests(t, k8sDir)
	dep := find[appsv1.Deployment](ms, "vllm-proxy")
	cm := find[corev1.ConfigMap](ms, "vllm-proxy-config")
	if dep == nil || cm == nil {
		t.Fatal("no Deployment or ConfigMap vllm-proxy")
	}
	c := dep.Spec.Template.Spec.Containers[0]
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte(cm.Data["config.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	args := slices.Clone(c.Args)
	for i, a := range args {
		if a == "/etc/vllm-proxy/config.yaml" {
			args[i] = cfg
		}
	}
	var env []string
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.SecretKeyRef != nil:
			s := find[corev1.Secret](ms, e.ValueFrom.SecretKeyRef.Name)
			if s == nil {
				t.Fatalf("no Secret %s", e.ValueFrom.SecretKeyRef.Name)
			}
			env = append(env, e.Name+"="+s.StringData[e.ValueFrom.SecretKeyRef.Key])
		case e.ValueFrom.ResourceFieldRef != nil:
			q := c.Resources.Limits[corev1.ResourceName(strings.TrimPrefix(e.ValueFrom.ResourceFieldRef.Resource, "limits."))]
			env = append(env, fmt.Sprintf("%s=%d", e.Name, q.Value()))
		}
	}
	cmds = append(cmds, deployed{"examples/kubernetes deployment.yaml", append(args, "--listen", "127.0.0.1:0"), env})

	if len(cmds) < 6 {
		t.Fatalf("found %d vllm-proxy commands, want 2 proxies + 3 sims in compose and 1 in Kubernetes", len(cmds))
	}
	for _, d := range cmds {
		t.Run(d.where, func(t *testing.T) {
			t.Parallel()
			code, out := runBriefly(t, bin, d.args, d.env, 3*time.Second)
			if code == 2 {
				t.Errorf("vllm-proxy %s exits 2 (usage):\n%s", strings.Join(d.args, " "), out)
			}
		})
	}
}

// local rewrites listen addresses to a free loopback port so the check binds nothing
// public and collides with nothing.
func local(args []string) []string {
	out := slices.Clone(args)
	for i := range out {
		if out[i] == "--listen" && i+1 < len(out) {
			out[i+1] = "127.0.0.1:0"
		}
	}
	if slices.Contains(out, "serve") && !slices.Contains(out, "--listen") {
		out = append(out, "--listen", "127.0.0.1:0")
	}
	return out
}

// runBriefly runs bin with args and env for at most d and returns its exit code (-1
// when it was still running and got SIGTERM) and its output.
func runBriefly(t *testing.T, bin string, args, env []string, d time.Duration) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), out.String()
		}
		return 0, out.String()
	case <-time.After(d):
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-done:
			_ = err // it got SIGTERM: how it exits is not the point
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Logf("%s killed after ignoring SIGTERM for 10 s: %v", strings.Join(args, " "), <-done)
		}
		return -1, out.String()
	}
}
