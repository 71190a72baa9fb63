# dingq image: the same build as `make build`, on a small non-root base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/dingq ./cmd/dingq

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dingq /usr/local/bin/dingq
COPY config.yaml /etc/dingq/config.yaml
ENV DINGQ_CONFIG=/etc/dingq/config.yaml
USER nonroot
ENTRYPOINT ["dingq"]
