package k8stest

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// composeFileSpec is the part of a compose file the checks read.
type composeFileSpec struct {
	Services map[string]composeService `json:"services"`
	Volumes  map[string]any            `json:"volumes"`
	Secrets  map[string]composeSecret  `json:"secrets"`
}

type composeService struct {
	Image       string   `json:"image"`
	User        string   `json:"user"`
	ReadOnly    bool     `json:"read_only"`
	CapDrop     []string `json:"cap_drop"`
	Entrypoint  []string `json:"entrypoint"`
	Command     []string `json:"command"`
	Volumes     []string `json:"volumes"`
	Secrets     []string `json:"secrets"`
	Scale       int      `json:"scale"`
	Healthcheck *struct {
		Test []string `json:"test"`
	} `json:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `json:"condition"`
	} `json:"depends_on"`
}

// composeSecret is a top-level secret: a host file, mounted read-only at
// /run/secrets/NAME in the services that list it.
type composeSecret struct {
	File string `json:"file"`
}

// program is what the container runs: the entrypoint followed by the
// command, as compose passes them.
func (s composeService) program() []string {
	return append(append([]string(nil), s.Entrypoint...), s.Command...)
}

// composeVar matches ${NAME}, ${NAME:-default}, ${NAME-default},
// ${NAME:?message} and ${NAME?message}.
var composeVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// interpolate replaces every variable as compose does with the environment
// env: a default (-) when env lacks it; a required variable (?) must be in
// env. A variable with neither is an error (the base file must work with no
// environment at all).
func interpolate(text string, env map[string]string) (string, error) {
	var errs []string
	out := composeVar.ReplaceAllStringFunc(text, func(m string) string {
		sub := composeVar.FindStringSubmatch(m)
		v, set := env[sub[1]]
		switch {
		case strings.HasSuffix(sub[2], "?"):
			if !set || v == "" {
				errs = append(errs, sub[1]+" (required: "+sub[3]+")")
			}
			return v
		case sub[2] == "":
			errs = append(errs, sub[1])
			return ""
		case set:
			return v
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
	return parseComposeEnv(text, nil)
}

func parseComposeEnv(text string, env map[string]string) (*composeFileSpec, error) {
	text, err := interpolate(text, env)
	if err != nil {
		return nil, err
	}
	var f composeFileSpec
	if err := yaml.Unmarshal([]byte(text), &f); err != nil {
		return nil, fmt.Errorf("compose file: %w", err)
	}
	return &f, nil
}

// override merges an override file into base as `compose -f base -f over`
// does for the fields the checks read: entrypoint, command and healthcheck
// replace, secrets and volumes add, top-level secrets and volumes merge.
func override(base, over *composeFileSpec) (*composeFileSpec, error) {
	out := &composeFileSpec{Services: map[string]composeService{}, Volumes: map[string]any{}, Secrets: map[string]composeSecret{}}
	for k, v := range base.Services {
		out.Services[k] = v
	}
	for k, v := range base.Volumes {
		out.Volumes[k] = v
	}
	for k, v := range base.Secrets {
		out.Secrets[k] = v
	}
	for k, v := range over.Volumes {
		out.Volumes[k] = v
	}
	for k, v := range over.Secrets {
		out.Secrets[k] = v
	}
	for name, o := range over.Services {
		s, ok := out.Services[name]
		if !ok {
			return nil, fmt.Errorf("the override adds service %s, which the base file does not have", name)
		}
		if o.Entrypoint != nil {
			s.Entrypoint = o.Entrypoint
		}
		if o.Command != nil {
			s.Command = o.Command
		}
		if o.Healthcheck != nil {
			s.Healthcheck = o.Healthcheck
		}
		s.Secrets = append(append([]string(nil), s.Secrets...), o.Secrets...)
		s.Volumes = append(append([]string(nil), s.Volumes...), o.Volumes...)
		out.Services[name] = s
	}
	return out, nil
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
		prog := s.program()
		if len(prog) == 0 {
			errs = append(errs, fmt.Errorf("service %s: no entrypoint or command", name))
			continue
		}
		run, err := parseFlags(prog[0], prog[1:])
		if err != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", name, err))
			continue
		}
		runs[name] = run
		sec := securityOf(run, nil)
		hc := s.Healthcheck
		if hc == nil || len(hc.Test) < 3 || hc.Test[0] != "CMD" || hc.Test[1] != prog[0] || hc.Test[2] != "healthcheck" {
			errs = append(errs, fmt.Errorf("service %s: healthcheck must be [CMD, %s, healthcheck, ...] (exec form, no shell)", name, prog[0]))
		} else if err := checkHealthcheck(hc.Test[3:], nil, sec); err != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", name, err))
		}
		for _, file := range sec.files() {
			if err := composeSecretFile(f, s, file); err != nil {
				errs = append(errs, fmt.Errorf("service %s: %w", name, err))
			}
		}
		if sec.metricsAddr != "" {
			if _, _, err := net.SplitHostPort(sec.metricsAddr); err != nil {
				errs = append(errs, fmt.Errorf("service %s: --metrics-addr %q: %w", name, sec.metricsAddr, err))
			}
		}
	}
	if c, w := runs["coordinator"], runs["worker"]; c != nil && w != nil {
		cs, ws := securityOf(c, nil), securityOf(w, nil)
		if cs.tls.Enabled() != ws.tls.Enabled() {
			errs = append(errs, fmt.Errorf("coordinator TLS %v, worker TLS %v: a mixed cluster cannot connect", cs.tls.Enabled(), ws.tls.Enabled()))
		}
		if cs.encrypted() != ws.encrypted() {
			errs = append(errs, fmt.Errorf("coordinator gossip key %v, worker gossip key %v: members without the key cannot join", cs.encrypted(), ws.encrypted()))
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

// composeSecretFile checks that a file a service's flags name is a compose
// secret the service lists (mounted at /run/secrets/NAME) whose host file is
// set.
func composeSecretFile(f *composeFileSpec, s composeService, file string) error {
	name, ok := strings.CutPrefix(file, "/run/secrets/")
	if !ok || strings.Contains(name, "/") {
		return fmt.Errorf("%s is not a compose secret (/run/secrets/NAME)", file)
	}
	if !slices.Contains(s.Secrets, name) {
		return fmt.Errorf("%s: the service does not list the secret %s", file, name)
	}
	if sec, ok := f.Secrets[name]; !ok || sec.File == "" {
		return fmt.Errorf("%s: no top-level secret %s with a file", file, name)
	}
	return nil
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
