# dingq image: built by `make build` itself, so the image's binary is built
# exactly as a developer's; run on a small non-root base (distroless static:
# no shell, no package manager, uid 65532).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN make build BIN=/out/dingq

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dingq /usr/local/bin/dingq
COPY config.yaml /etc/dingq/config.yaml
ENV DINGQ_CONFIG=/etc/dingq/config.yaml
USER nonroot
ENTRYPOINT ["dingq"]
