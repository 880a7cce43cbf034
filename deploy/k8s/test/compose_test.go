package k8stest

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// composeFileSpec is the part of a compose file the checks read.
type composeFileSpec struct {
	Services map[string]composeService `json:"services"`
	Volumes  map[string]any            `json:"volumes"`
}

type composeService struct {
	Image       string   `json:"image"`
	User        string   `json:"user"`
	ReadOnly    bool     `json:"read_only"`
	CapDrop     []string `json:"cap_drop"`
	Command     []string `json:"command"`
	Volumes     []string `json:"volumes"`
	Scale       int      `json:"scale"`
	Healthcheck *struct {
		Test []string `json:"test"`
	} `json:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `json:"condition"`
	} `json:"depends_on"`
}

// composeVar matches ${NAME}, ${NAME:-default} and ${NAME-default}.
var composeVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}`)

// interpolate replaces every variable by its default, as compose does with an
// empty environment; a variable without a default is an error (the file must
// work with no environment at all).
func interpolate(text string) (string, error) {
	var errs []string
	out := composeVar.ReplaceAllStringFunc(text, func(m string) string {
		sub := composeVar.FindStringSubmatch(m)
		if sub[2] == "" {
			errs = append(errs, sub[1])
			return ""
		}
		return sub[3]
	})
	if len(errs) > 0 {
		return "", fmt.Errorf("variables without a default: %v", errs)
	}
	return strings.ReplaceAll(out, "$$", "$"), nil
}

func loadCompose(path string) (*composeFileSpec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read compose file: %w", err)
	}
	return parseCompose(string(raw))
}

func parseCompose(text string) (*composeFileSpec, error) {
	text, err := interpolate(text)
	if err != nil {
		return nil, err
	}
	var f composeFileSpec
	if err := yaml.Unmarshal([]byte(text), &f); err != nil {
		return nil, fmt.Errorf("compose file: %w", err)
	}
	return &f, nil
}

// checkCompose checks the compose file on its own and against the
// Kubernetes base (image and user).
func checkCompose(f *composeFileSpec, base *bundle) []error {
	var errs []error
	coord, okC := f.Services["coordinator"]
	worker, okW := f.Services["worker"]
	if !okC || !okW {
		return []error{fmt.Errorf("want services coordinator and worker, have %v", keys(f.Services))}
	}
	runs := map[string]any{}
	for name, s := range f.Services {
		if s.Image != coord.Image {
			errs = append(errs, fmt.Errorf("service %s: image %q differs from the coordinator's %q", name, s.Image, coord.Image))
		}
		if !regexp.MustCompile(`^[1-9][0-9]*(:[0-9]+)?$`).MatchString(s.User) {
			errs = append(errs, fmt.Errorf("service %s: user %q is not a numeric non-root user", name, s.User))
		}
		if !s.ReadOnly {
			errs = append(errs, fmt.Errorf("service %s: read_only is not true", name))
		}
		if len(s.CapDrop) != 1 || s.CapDrop[0] != "ALL" {
			errs = append(errs, fmt.Errorf("service %s: cap_drop must be [ALL]", name))
		}
		if len(s.Command) == 0 {
			errs = append(errs, fmt.Errorf("service %s: no command", name))
			continue
		}
		run, err := parseFlags(s.Command[0], s.Command[1:])
		if err != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", name, err))
			continue
		}
		runs[name] = run
		hc := s.Healthcheck
		if hc == nil || len(hc.Test) < 3 || hc.Test[0] != "CMD" || hc.Test[1] != s.Command[0] || hc.Test[2] != "healthcheck" {
			errs = append(errs, fmt.Errorf("service %s: healthcheck must be [CMD, %s, healthcheck, ...] (exec form, no shell)", name, s.Command[0]))
		} else if err := healthcheckAddrMatches(hc.Test[3:], run); err != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", name, err))
		}
	}
	if dep, ok := worker.DependsOn["coordinator"]; !ok || dep.Condition != "service_healthy" {
		errs = append(errs, fmt.Errorf("worker: depends_on coordinator must have condition service_healthy"))
	}
	if worker.Scale != 3 {
		errs = append(errs, fmt.Errorf("worker: scale %d, want 3 by default", worker.Scale))
	}
	c, okC := runs["coordinator"].(*coordinatorRun)
	w, okW := runs["worker"].(*workerRun)
	if okC && okW {
		_, gport, _ := net.SplitHostPort(c.opts.GossipAddr)
		for _, j := range splitComma(w.opts.Join) {
			host, port, _ := net.SplitHostPort(j)
			if host != "coordinator" || port != gport {
				errs = append(errs, fmt.Errorf("worker --join %s: want the coordinator service's gossip address coordinator:%s", j, gport))
			}
		}
		if c.opts.MinWorkers > worker.Scale {
			errs = append(errs, fmt.Errorf("coordinator --min-workers %d exceeds the default %d workers", c.opts.MinWorkers, worker.Scale))
		}
		if !namedVolumeAt(f, coord.Volumes, c.opts.Job.Out) {
			errs = append(errs, fmt.Errorf("coordinator --out %s is not a named volume", c.opts.Job.Out))
		}
	}
	// The image and user are the Kubernetes base's.
	for _, wl := range ourWorkloads(base) {
		for _, ct := range wl.spec.Containers {
			if ct.Image != coord.Image {
				errs = append(errs, fmt.Errorf("%s container %s: image %q, the compose file uses %q", wl, ct.Name, ct.Image, coord.Image))
			}
			uid := wl.spec.SecurityContext.RunAsUser
			if uid == nil || strconv.FormatInt(*uid, 10) != strings.Split(coord.User, ":")[0] {
				errs = append(errs, fmt.Errorf("%s: runAsUser differs from the compose user %q", wl, coord.User))
			}
		}
	}
	return errs
}

// healthcheckAddrMatches checks that a healthcheck's --addr port is the
// service's --grpc-addr port.
func healthcheckAddrMatches(args []string, run any) error {
	var grpcAddr string
	switch r := run.(type) {
	case *coordinatorRun:
		grpcAddr = r.opts.GRPCAddr
	case *workerRun:
		grpcAddr = r.opts.GRPCAddr
	}
	_, want, err := net.SplitHostPort(grpcAddr)
	if err != nil {
		return fmt.Errorf("--grpc-addr %q: %w", grpcAddr, err)
	}
	for i, a := range args {
		addr, ok := strings.CutPrefix(a, "--addr=")
		if !ok && a == "--addr" && i+1 < len(args) {
			addr, ok = args[i+1], true
		}
		if ok {
			if _, port, err := net.SplitHostPort(addr); err != nil || port != want {
				return fmt.Errorf("healthcheck --addr %s does not ask the gRPC port %s", addr, want)
			}
			return nil
		}
	}
	return fmt.Errorf("healthcheck has no --addr")
}

func namedVolumeAt(f *composeFileSpec, mounts []string, dir string) bool {
	for _, m := range mounts {
		parts := strings.Split(m, ":")
		if len(parts) < 2 {
			continue
		}
		if _, declared := f.Volumes[parts[0]]; declared && parts[1] == dir {
			return true
		}
	}
	return false
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
