package deploy

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// TestDockerfile checks what the Dockerfile must agree on with the rest of the tree (no
// Docker engine here to build it): the Go toolchain of go.mod, the package it builds,
// the binary the final stage runs, a non-root user, and the port that
// docker-compose.yml publishes and the Kubernetes Deployment declares.
func TestDockerfile(t *testing.T) {
	df := readText(t, "../Dockerfile")
	gomod := readText(t, "../go.mod")

	goVer := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(gomod)
	from := regexp.MustCompile(`(?m)^FROM golang:(\d+\.\d+)\S* AS build`).FindStringSubmatch(df)
	if goVer == nil || from == nil || goVer[1] != from[1] {
		t.Errorf("build stage golang:%v, go.mod go %v: they must match", from, goVer)
	}
	build := regexp.MustCompile(`go build .*-o (\S+) (\./\S+)`).FindStringSubmatch(df)
	if build == nil {
		t.Fatal("no go build line")
	}
	if st, err := os.Stat("../" + build[2]); err != nil || !st.IsDir() {
		t.Errorf("the Dockerfile builds %s, which is not a package directory: %v", build[2], err)
	}
	copyLine := regexp.MustCompile(`(?m)^COPY --from=build (\S+) (\S+)$`).FindStringSubmatch(df)
	entry := regexp.MustCompile(`(?m)^ENTRYPOINT \["([^"]+)"\]`).FindStringSubmatch(df)
	if copyLine == nil || copyLine[1] != build[1] || entry == nil ||
		!strings.HasSuffix(copyLine[2], "/"+entry[1]) && copyLine[2] != entry[1] {
		t.Errorf("built %s, copied %v, entrypoint %v: the final stage must run the built binary", build[1], copyLine, entry)
	}
	stages := strings.Split(df, "\nFROM ")
	final := stages[len(stages)-1]
	if user := regexp.MustCompile(`(?m)^USER (\S+)`).FindStringSubmatch(final); user == nil || strings.HasPrefix(user[1], "root") || strings.HasPrefix(user[1], "0") {
		t.Errorf("the final stage runs as %v, want a non-root user", user)
	}
	expose := regexp.MustCompile(`(?m)^EXPOSE (\d+)`).FindStringSubmatch(final)
	if expose == nil || expose[1] != "8010" {
		t.Fatalf("EXPOSE %v, want 8010 (serve's default --listen)", expose)
	}

	p, err := loadCompose(t, composeFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"proxy-1", "proxy-2"} {
		s, err := p.GetService(name)
		if err != nil {
			t.Fatal(err)
		}
		if s.Build == nil || s.Build.Dockerfile != "Dockerfile" && s.Build.Dockerfile != "" {
			t.Errorf("%s does not build this Dockerfile: %+v", name, s.Build)
		}
	}
	dep := find[appsv1.Deployment](loadManifests(t, k8sDir), "vllm-proxy")
	var ports []string
	for _, cp := range dep.Spec.Template.Spec.Containers[0].Ports {
		ports = append(ports, strconv.Itoa(int(cp.ContainerPort)))
	}
	if !slices.Contains(ports, expose[1]) {
		t.Errorf("the Deployment's container ports %v lack the image's %s", ports, expose[1])
	}
}

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
