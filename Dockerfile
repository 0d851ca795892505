# syntax=docker/dockerfile:1
# Multi-stage build of a static vllm-proxy binary on a minimal non-root image.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/vllm-proxy ./cmd/vllm-proxy

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/vllm-proxy /usr/local/bin/vllm-proxy
USER nonroot:nonroot
EXPOSE 8010
ENTRYPOINT ["vllm-proxy"]
CMD ["serve"]
