package main

import (
	"bytes"
	"net"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dingq/dingq/internal/config"
	"go.yaml.in/yaml/v3"
)

// The deployment files are checked without a Docker engine (none runs on
// these machines): docker-compose.yml through `docker-compose config`, the
// configuration it mounts through config.Parse with the environment compose
// gives each container, and the Dockerfile against the Makefile.

// lookTool finds a command a test needs: missing, the test skips loudly,
// except under CI, which must install it (.ci/run does).
func lookTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed, and CI is set: .ci/run must install it (apt-get install %s)", name, pkg)
		}
		t.Skipf("SKIPPING: %s is not installed (apt-get install %s)", name, pkg)
	}
	return p
}

func TestDockerfileBuildsLikeMake(t *testing.T) {
	dockerfile := readRepoFile(t, "Dockerfile")
	makefile := readRepoFile(t, "Makefile")
	// The image's binary is built by `make build` itself, so the two
	// cannot drift apart.
	if !regexp.MustCompile(`(?m)^RUN make build BIN=\S+$`).MatchString(dockerfile) {
		t.Errorf("Dockerfile does not build with `RUN make build BIN=...`")
	}
	if !regexp.MustCompile(`(?m)^build:.*\n\tCGO_ENABLED=0 \$\(GO\) build -trimpath -o \$\(BIN\) ./cmd/dingq$`).MatchString(makefile) {
		t.Errorf("Makefile's build target is not the static build the image relies on (CGO_ENABLED=0 for a distroless base)")
	}
	if !strings.Contains(dockerfile, "distroless/static") || !regexp.MustCompile(`(?m)^USER nonroot$`).MatchString(dockerfile) {
		t.Errorf("the image must run on distroless static as the nonroot user")
	}
	// What make build needs must reach the build context.
	ignored := strings.Fields(readRepoFile(t, ".dockerignore"))
	for _, need := range []string{"Makefile", "go.mod", "go.sum", "cmd", "dingtalk", "internal", "producer", "worker", "config.yaml"} {
		if slices.Contains(ignored, need) {
			t.Errorf(".dockerignore leaves out %s, which the build needs", need)
		}
	}
}

// composeEnv is what an operator's .env would hold.
var composeEnv = []string{
	"DINGQ_HR_APP_SECRET=hr-app-secret-from-env",
	"DINGQ_API_TOKEN=api-token-0123456789abcdef",
	"DINGQ_UI_PASSWORD=ui-password-0123456789",
}

// composeConfig runs `docker-compose config` on the repository's file with
// env and returns its output.
func composeConfig(t *testing.T, env []string, args ...string) ([]byte, error) {
	t.Helper()
	bin := lookTool(t, "docker-compose", "docker-compose")
	cmd := exec.Command(bin, append([]string{"--project-directory", "../..", "-f", "../../docker-compose.yml"}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, &composeError{err: err, stderr: stderr.String()}
	}
	return out, nil
}

type composeError struct {
	err    error
	stderr string
}

func (e *composeError) Error() string { return e.err.Error() + ": " + e.stderr }

type composeService struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Environment map[string]string `yaml:"environment"`
	Profiles    []string          `yaml:"profiles"`
	Volumes     []string          `yaml:"volumes"`
	Deploy      struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
	Ports []struct {
		Published any `yaml:"published"`
		Target    int `yaml:"target"`
	} `yaml:"ports"`
	StopGracePeriod string `yaml:"stop_grace_period"`
}

func TestComposeConfig(t *testing.T) {
	out, err := composeConfig(t, composeEnv, "config")
	if err != nil {
		t.Fatalf("docker-compose config: %v", err)
	}
	var file struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal(out, &file); err != nil {
		t.Fatalf("parsing docker-compose config's output: %v\n%s", err, out)
	}
	svc := file.Services
	for _, name := range []string{"redis", "worker", "api", "prometheus", "fake-dingtalk"} {
		if _, ok := svc[name]; !ok {
			t.Fatalf("no service %q; have %v", name, keys(svc))
		}
	}

	// Redis keeps what it accepted and never evicts a key.
	redisCmd := strings.Join(svc["redis"].Command, " ")
	for _, want := range []string{"--appendonly yes", "--maxmemory-policy noeviction"} {
		if !strings.Contains(redisCmd, want) {
			t.Errorf("redis command %q lacks %q", redisCmd, want)
		}
	}
	if svc["worker"].Deploy.Replicas != 2 {
		t.Errorf("worker replicas: got %d, want 2", svc["worker"].Deploy.Replicas)
	}
	if !slices.Equal(svc["fake-dingtalk"].Profiles, []string{"fake"}) {
		t.Errorf("fake-dingtalk profiles: got %v, want [fake]", svc["fake-dingtalk"].Profiles)
	}

	// Each dingq container loads deploy/config.yaml with the environment
	// compose gives it, as `dingq` would at start.
	data := []byte(readRepoFile(t, "deploy/config.yaml"))
	var workerCfg *config.Config
	for _, name := range []string{"worker", "api"} {
		s := svc[name]
		if s.Command[0] != name {
			t.Errorf("%s command: got %v", name, s.Command)
		}
		if !slices.ContainsFunc(s.Volumes, func(v string) bool { return strings.HasSuffix(v, "deploy/config.yaml:/etc/dingq/config.yaml:ro") }) {
			t.Errorf("%s does not mount deploy/config.yaml read-only: %v", name, s.Volumes)
		}
		var environ []string
		for k, v := range s.Environment {
			environ = append(environ, k+"="+v)
		}
		c, err := config.Parse(data, environ)
		if err != nil {
			t.Fatalf("deploy/config.yaml in the %s container: %v", name, err)
		}
		if c.Redis.Addr != "redis:6379" || c.DingTalk.Apps[0].AppSecret != "hr-app-secret-from-env" ||
			len(c.API.Tokens) != 1 || len(c.API.UIUsers) != 1 || c.API.UIUsers[0].Password != "ui-password-0123456789" {
			t.Errorf("%s config: redis %q, apps %d, tokens %d, ui users %d", name, c.Redis.Addr, len(c.DingTalk.Apps), len(c.API.Tokens), len(c.API.UIUsers))
		}
		if name == "worker" {
			workerCfg = c
		}
		// asynqmon queries Prometheus from the api's side, so the URL must
		// name the compose service, not the operator's localhost.
		if name == "api" {
			u, err := url.Parse(c.API.UIPrometheusURL)
			if err != nil || u.Hostname() != "prometheus" || u.Port() != "9090" {
				t.Errorf("api.ui_prometheus_url %q: want the prometheus service (http://prometheus:9090)", c.API.UIPrometheusURL)
			}
		}
	}
	if g := svc["worker"].StopGracePeriod; g == "" {
		t.Errorf("worker has no stop_grace_period; in-flight deliveries need worker.shutdown_timeout (%v)", workerCfg.Worker.ShutdownTimeout)
	}

	// Prometheus scrapes the api with its token and every worker on the
	// port the workers serve metrics on.
	var prom struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			Authorization struct {
				CredentialsFile string `yaml:"credentials_file"`
			} `yaml:"authorization"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
			DNSSDConfigs []struct {
				Names []string `yaml:"names"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal([]byte(readRepoFile(t, "deploy/prometheus.yml")), &prom); err != nil {
		t.Fatalf("deploy/prometheus.yml: %v", err)
	}
	_, metricsPort, _ := net.SplitHostPort(workerCfg.Worker.MetricsListen)
	var api, workers bool
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			if slices.Contains(st.Targets, "api:8080") && sc.Authorization.CredentialsFile != "" {
				api = true
				if entry := strings.Join(svc["prometheus"].Entrypoint, " "); !strings.Contains(entry, sc.Authorization.CredentialsFile) {
					t.Errorf("prometheus's entrypoint does not write %s: %s", sc.Authorization.CredentialsFile, entry)
				}
			}
		}
		for _, d := range sc.DNSSDConfigs {
			if slices.Contains(d.Names, "worker") && metricsPort != "" && d.Port > 0 && metricsPort == strconv.Itoa(d.Port) {
				workers = true
			}
		}
	}
	if !api || !workers {
		t.Errorf("prometheus.yml scrapes the api with a token: %v; every worker on worker.metrics_listen's port (%s): %v", api, metricsPort, workers)
	}
}

func TestComposeNeedsSecrets(t *testing.T) {
	for i, v := range composeEnv {
		name, _, _ := strings.Cut(v, "=")
		env := slices.Delete(slices.Clone(composeEnv), i, i+1)
		_, err := composeConfig(t, env, "config", "-q")
		if err == nil || !strings.Contains(err.Error(), "set "+name) {
			t.Errorf("without %s: got %v, want an error naming it", name, err)
		}
	}
}

func readRepoFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile("../../" + path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
