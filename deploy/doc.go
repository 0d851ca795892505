// Package deploy holds no code: its tests check the deployment files that CI can check
// without a network or a Docker engine.
//
//   - kubernetes_test.go decodes every manifest in examples/kubernetes strictly into the
//     official k8s.io/api types (an unknown or misspelt field fails) and checks what the
//     manifests promise each other: replicas, the readiness probe on /health, resources,
//     the PodDisruptionBudget and Service selecting the Deployment's pods, the ConfigMap
//     and Secret the pods mount, and Redis's persistence and eviction settings.
//   - compose_test.go loads and validates docker-compose.yml with compose-go, once per
//     profile combination, and checks the services each one runs.
//   - dockerfile_test.go checks that the Dockerfile builds cmd/vllm-proxy with go.mod's
//     Go version, runs it as a non-root user, and exposes the port compose and
//     Kubernetes use.
//   - commands_test.go runs every vllm-proxy command line of those files (with their
//     environment, Secret and ConfigMap) through the real binary, which must accept
//     their flags, variables and config file.
//   - probes_test.go asks the real binary the Deployment's probe paths: readiness 503
//     and liveness 200 when no backend is healthy.
//   - docs_test.go keeps docs/OPERATIONS.md's alert table and alerts.yml in step.
//   - monitoring_test.go builds vllm-proxy, runs it with simulators and a real
//     redis-server, scrapes /metrics after interactive traffic and a batch, and checks
//     that every query of every Grafana dashboard and alert rule in examples/monitoring
//     names a metric the proxy really exports (or one in the commented allow-list).
package deploy
