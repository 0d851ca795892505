package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// k8sDir is where the Kubernetes examples live, from this package's directory.
const k8sDir = "../examples/kubernetes"

// manifest is one decoded document of a manifest file.
type manifest struct {
	file string
	kind string
	obj  any
}

// newObject returns an empty object of the official type for apiVersion and kind, or nil.
func newObject(apiVersion, kind string) any {
	switch apiVersion + " " + kind {
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}
	case "apps/v1 StatefulSet":
		return &appsv1.StatefulSet{}
	case "v1 Service":
		return &corev1.Service{}
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}
	case "v1 Secret":
		return &corev1.Secret{}
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}
	}
	return nil
}

// docSep splits a multi-document YAML file.
var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// decodeStrict converts one YAML document to JSON and decodes it into obj, failing on
// any field the type does not have.
func decodeStrict(doc []byte, obj any) error {
	js, err := yaml.YAMLToJSONStrict(doc) // duplicate keys are errors too
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the object")
	}
	return nil
}

// loadManifests decodes every document of every .yaml file in dir.
func loadManifests(t *testing.T, dir string) []manifest {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no manifests in %s", dir)
	}
	var out []manifest
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range docSep.Split(string(data), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			m, err := decodeManifest([]byte(doc))
			if err != nil {
				t.Errorf("%s document %d: %v", filepath.Base(f), i+1, err)
				continue
			}
			m.file = filepath.Base(f)
			out = append(out, m)
		}
	}
	return out
}

// decodeManifest reads apiVersion and kind, then decodes doc strictly into that type.
func decodeManifest(doc []byte) (manifest, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return manifest{}, err
	}
	obj := newObject(head.APIVersion, head.Kind)
	if obj == nil {
		return manifest{}, fmt.Errorf("apiVersion %q kind %q: not a type this test knows; add it to newObject", head.APIVersion, head.Kind)
	}
	if err := decodeStrict(doc, obj); err != nil {
		return manifest{}, fmt.Errorf("%s: %w", head.Kind, err)
	}
	return manifest{kind: head.Kind, obj: obj}, nil
}

func stripComments(doc string) string {
	var b strings.Builder
	for line := range strings.Lines(doc) {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// TestDecodeStrictRejects shows the strict decoding has teeth: a misspelt field, a field
// at the wrong level and an unknown kind all fail.
func TestDecodeStrictRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"misspelt field": "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {selectr: {a: b}}\n",
		"wrong level":    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nreplicas: 3\n",
		"duplicate key":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\nmetadata: {name: y}\n",
		"wrong type":     "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: three}\n",
		"unknown kind":   "apiVersion: v1\nkind: Pod2\nmetadata: {name: x}\n",
	} {
		if _, err := decodeManifest([]byte(doc)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

// find returns the objects of type T named name.
func find[T any](ms []manifest, name string) *T {
	for _, m := range ms {
		if o, ok := m.obj.(*T); ok && objName(m.obj) == name {
			return o
		}
	}
	return nil
}

func objName(o any) string {
	switch v := o.(type) {
	case *appsv1.Deployment:
		return v.Name
	case *appsv1.StatefulSet:
		return v.Name
	case *corev1.Service:
		return v.Name
	case *corev1.ConfigMap:
		return v.Name
	case *corev1.Secret:
		return v.Name
	case *policyv1.PodDisruptionBudget:
		return v.Name
	case *autoscalingv2.HorizontalPodAutoscaler:
		return v.Name
	}
	return ""
}

// selects reports whether every key of selector has the same value in labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestKubernetesManifests(t *testing.T) {
	ms := loadManifests(t, k8sDir)
	dep := find[appsv1.Deployment](ms, "vllm-proxy")
	if dep == nil {
		t.Fatal("no Deployment vllm-proxy")
	}
	pod := dep.Spec.Template
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 3 {
		t.Errorf("Deployment replicas = %v, want 3", dep.Spec.Replicas)
	}
	if !selects(dep.Spec.Selector.MatchLabels, pod.Labels) {
		t.Errorf("Deployment selector %v does not select its pod labels %v", dep.Spec.Selector.MatchLabels, pod.Labels)
	}
	if ru := dep.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update must keep every replica serving (maxUnavailable 0): %+v", ru)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	rp := c.ReadinessProbe
	if rp == nil || rp.HTTPGet == nil || rp.HTTPGet.Path != "/health" {
		t.Errorf("readiness probe = %+v, want an HTTP GET of /health", rp)
	} else if !portNamed(c, rp.HTTPGet.Port.String()) {
		t.Errorf("readiness probe port %q is not a container port", rp.HTTPGet.Port.String())
	}
	if lp := c.LivenessProbe; lp != nil && lp.HTTPGet != nil && lp.HTTPGet.Path == "/health" {
		t.Error("liveness on /health restarts every proxy when the backends are down; use /version")
	}
	checkResources(t, "vllm-proxy", c)
	if g := pod.Spec.TerminationGracePeriodSeconds; g == nil || *g <= shutdownTimeoutSeconds(c.Args)+preStopSeconds(c) {
		t.Errorf("terminationGracePeriodSeconds %v must exceed preStop %d s + --shutdown-timeout %d s", g, preStopSeconds(c), shutdownTimeoutSeconds(c.Args))
	}

	pdb := find[policyv1.PodDisruptionBudget](ms, "vllm-proxy")
	switch {
	case pdb == nil:
		t.Error("no PodDisruptionBudget vllm-proxy")
	case pdb.Spec.Selector == nil || !selects(pdb.Spec.Selector.MatchLabels, pod.Labels):
		t.Errorf("PodDisruptionBudget does not select the Deployment's pods")
	case pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 1 || pdb.Spec.MinAvailable.IntValue() >= 3:
		t.Errorf("PodDisruptionBudget minAvailable = %v, want 1 or 2 of 3 (3 blocks every drain)", pdb.Spec.MinAvailable)
	}

	if hpa := find[autoscalingv2.HorizontalPodAutoscaler](ms, "vllm-proxy"); hpa != nil {
		ref := hpa.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.Name != dep.Name || ref.APIVersion != "apps/v1" {
			t.Errorf("the HorizontalPodAutoscaler scales %+v, not the Deployment", ref)
		}
		if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < *dep.Spec.Replicas || hpa.Spec.MaxReplicas < *hpa.Spec.MinReplicas {
			t.Errorf("HorizontalPodAutoscaler min %v max %d: the floor must stay at the Deployment's %d replicas", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas, *dep.Spec.Replicas)
		}
	}

	svc := find[corev1.Service](ms, "vllm-proxy")
	if svc == nil {
		t.Fatal("no Service vllm-proxy")
	}
	if !selects(svc.Spec.Selector, pod.Labels) {
		t.Errorf("Service selector %v does not select the Deployment's pods %v", svc.Spec.Selector, pod.Labels)
	}
	for _, p := range svc.Spec.Ports {
		if !portNamed(c, p.TargetPort.String()) {
			t.Errorf("Service port %s targets %q, not a container port", p.Name, p.TargetPort.String())
		}
	}

	for _, v := range pod.Spec.Volumes {
		if v.ConfigMap != nil && find[corev1.ConfigMap](ms, v.ConfigMap.Name) == nil {
			t.Errorf("volume %s mounts ConfigMap %s, which is not in %s", v.Name, v.ConfigMap.Name, k8sDir)
		}
	}
	for _, e := range c.Env {
		if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil {
			s := find[corev1.Secret](ms, r.SecretKeyRef.Name)
			if s == nil {
				t.Errorf("env %s reads Secret %s, which is not in %s", e.Name, r.SecretKeyRef.Name, k8sDir)
			} else if _, ok := s.StringData[r.SecretKeyRef.Key]; !ok {
				t.Errorf("env %s reads key %s, which Secret %s lacks", e.Name, r.SecretKeyRef.Key, s.Name)
			}
		}
	}
	cm := find[corev1.ConfigMap](ms, "vllm-proxy-config")
	if cm == nil || cm.Data["config.yaml"] == "" {
		t.Fatal("ConfigMap vllm-proxy-config has no config.yaml")
	}
	if !slices.Contains(c.Args, "/etc/vllm-proxy/config.yaml") {
		t.Errorf("container args %v do not load the mounted config.yaml", c.Args)
	}
}

// TestKubernetesRedis checks the Redis example keeps batch state: AOF on, noeviction, a
// maxmemory, and a persistent volume for /data.
func TestKubernetesRedis(t *testing.T) {
	ms := loadManifests(t, k8sDir)
	ss := find[appsv1.StatefulSet](ms, "redis")
	if ss == nil {
		t.Fatal("no StatefulSet redis (or a note on managed Redis replacing it)")
	}
	c := ss.Spec.Template.Spec.Containers[0]
	args := strings.Join(append(slices.Clone(c.Command), c.Args...), " ")
	for _, want := range []string{"--appendonly yes", "--maxmemory-policy noeviction", "--maxmemory "} {
		if !strings.Contains(args, want) {
			t.Errorf("redis args %q lack %q", args, want)
		}
	}
	checkResources(t, "redis", c)
	if len(ss.Spec.VolumeClaimTemplates) == 0 {
		t.Error("redis has no volume claim: the AOF would not survive a reschedule")
	}
	if find[corev1.Service](ms, ss.Spec.ServiceName) == nil {
		t.Errorf("redis StatefulSet names Service %q, which is not there", ss.Spec.ServiceName)
	}
	note, err := os.ReadFile(filepath.Join(k8sDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"managed Redis", "noeviction", "appendonly", "maxmemory"} {
		if !strings.Contains(string(note), want) {
			t.Errorf("README.md does not mention %q", want)
		}
	}
}

func checkResources(t *testing.T, name string, c corev1.Container) {
	t.Helper()
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := c.Resources.Requests[r]
		lim, okLim := c.Resources.Limits[r]
		if !okReq {
			t.Errorf("%s: no %s request", name, r)
		}
		if r == corev1.ResourceMemory && !okLim {
			t.Errorf("%s: no memory limit", name)
		}
		if okReq && okLim && req.Cmp(lim) > 0 {
			t.Errorf("%s: %s request %s above limit %s", name, r, req.String(), lim.String())
		}
	}
}

func portNamed(c corev1.Container, port string) bool {
	for _, p := range c.Ports {
		if p.Name == port || fmt.Sprint(p.ContainerPort) == port {
			return true
		}
	}
	return false
}

// shutdownTimeoutSeconds is --shutdown-timeout in args (30 s when absent, serve's default).
func shutdownTimeoutSeconds(args []string) int64 {
	for i, a := range args {
		if a == "--shutdown-timeout" && i+1 < len(args) {
			var n int64
			if _, err := fmt.Sscanf(args[i+1], "%ds", &n); err == nil {
				return n
			}
		}
	}
	return 30
}

func preStopSeconds(c corev1.Container) int64 {
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		return c.Lifecycle.PreStop.Sleep.Seconds
	}
	return 0
}
