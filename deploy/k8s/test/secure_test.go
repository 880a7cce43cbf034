package k8stest

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/ringtrain/ringtrain/pkg/tlsutil"
)

// Facts about the metrics endpoint the manifests must agree on.
const (
	metricsPortName = "metrics"
	scrapeAnnot     = "prometheus.io/scrape"
	portAnnot       = "prometheus.io/port"
)

// security is what a parsed command line (flags, then the environment, as
// the binaries read it) says about TLS, gossip encryption and metrics.
type security struct {
	tls         tlsutil.Config
	gossipKey   string // --gossip-key-file
	gossipEnv   bool   // RINGTRAIN_GOSSIP_KEY set in the environment
	metricsAddr string
	grpcAddr    string
}

// securityOf reads the security settings of a parsed run; env is the
// container's environment (nil for none).
func securityOf(run any, env map[string]string) security {
	getenv := func(k string) string { return env[k] }
	var s security
	switch r := run.(type) {
	case *coordinatorRun:
		s = security{r.opts.TLS, r.opts.GossipKeyFile, false, r.opts.MetricsAddr, r.opts.GRPCAddr}
	case *workerRun:
		s = security{r.opts.TLS, r.opts.GossipKeyFile, false, r.opts.MetricsAddr, r.opts.GRPCAddr}
	}
	s.tls = s.tls.FromEnv(getenv)
	s.gossipEnv = env["RINGTRAIN_GOSSIP_KEY"] != ""
	return s
}

// files lists the files the settings make the binary read at start.
func (s security) files() []string {
	var out []string
	for _, f := range []string{s.tls.CertFile, s.tls.KeyFile, s.tls.CAFile, s.gossipKey} {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (s security) encrypted() bool { return s.gossipKey != "" || s.gossipEnv }

// healthcheckArgs parses the arguments of a `healthcheck` subcommand with the
// flags the subcommand defines (pkg/cli.Healthcheck) and returns its address
// and TLS configuration (flags, then env).
func healthcheckArgs(args []string, env map[string]string) (string, tlsutil.Config, error) {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(&bytes.Buffer{})
	addr := fs.String("addr", "", "")
	fs.Duration("timeout", 0, "")
	fs.String("service", "", "")
	var tc tlsutil.Config
	tc.Bind(fs)
	if err := fs.Parse(args); err != nil {
		return "", tc, fmt.Errorf("healthcheck flags %q: %w", args, err)
	}
	if fs.NArg() > 0 {
		return "", tc, fmt.Errorf("healthcheck: stray argument %q", fs.Arg(0))
	}
	return *addr, tc.FromEnv(func(k string) string { return env[k] }), nil
}

// checkHealthcheck checks a healthcheck command's arguments against the
// binary's settings: it asks the gRPC port and speaks TLS exactly when the
// server does, with the same files.
func checkHealthcheck(args []string, env map[string]string, s security) error {
	addr, tc, err := healthcheckArgs(args, env)
	if err != nil {
		return err
	}
	_, want, err := net.SplitHostPort(s.grpcAddr)
	if err != nil {
		return fmt.Errorf("--grpc-addr %q: %w", s.grpcAddr, err)
	}
	if addr == "" {
		return fmt.Errorf("healthcheck has no --addr")
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port != want {
		return fmt.Errorf("healthcheck --addr %s does not ask the gRPC port %s", addr, want)
	}
	if tc != s.tls {
		return fmt.Errorf("healthcheck TLS files %+v differ from the server's %+v (with TLS on the server, a health check needs the same --tls-* flags)", tc, s.tls)
	}
	return nil
}

// containerSecurity parses a container's command line (args expanded) and
// returns its settings, or nil when it does not parse (checkFlags says why).
func containerSecurity(b *bundle, c corev1.Container) *security {
	env, err := containerEnv(b, c)
	if err != nil {
		return nil
	}
	args, err := resolvedArgs(b, c)
	if err != nil {
		return nil
	}
	run, err := parseFlags(firstOf(c.Command), args)
	if err != nil {
		return nil
	}
	s := securityOf(run, env)
	return &s
}

// checkTLSProbes: with TLS on, the kubelet's native grpc probe (which cannot
// do TLS) would always fail; exec probes of `healthcheck` must carry the
// server's TLS files, and must not when TLS is off.
func checkTLSProbes(b *bundle) []error {
	var errs []error
	for _, w := range ourWorkloads(b) {
		for _, c := range w.spec.Containers {
			s := containerSecurity(b, c)
			if s == nil {
				continue
			}
			env, _ := containerEnv(b, c)
			probes := []struct {
				name string
				p    *corev1.Probe
			}{{"startupProbe", c.StartupProbe}, {"readinessProbe", c.ReadinessProbe}, {"livenessProbe", c.LivenessProbe}}
			for _, pr := range probes {
				switch {
				case pr.p == nil:
				case pr.p.GRPC != nil && s.tls.Enabled():
					errs = append(errs, fmt.Errorf("%s container %s %s: a grpc probe cannot speak TLS, and the server requires it (use an exec probe of healthcheck with the --tls-* flags)", w, c.Name, pr.name))
				case pr.p.Exec != nil && len(pr.p.Exec.Command) >= 2:
					cmd := pr.p.Exec.Command
					if cmd[0] != firstOf(c.Command) {
						errs = append(errs, fmt.Errorf("%s container %s %s: runs %s, the container runs %s", w, c.Name, pr.name, cmd[0], firstOf(c.Command)))
					}
					if err := checkHealthcheck(cmd[2:], env, *s); err != nil {
						errs = append(errs, fmt.Errorf("%s container %s %s: %w", w, c.Name, pr.name, err))
					}
				}
			}
		}
	}
	return errs
}

// checkSecretFiles: every file the flags name (TLS, gossip key) is in a
// read-only mount of a required Secret that lists the file's key in its
// items, so that a missing Secret or key stops the pod before it starts
// (a coordinator that cannot read a file exits 2, which fails the Job).
func checkSecretFiles(b *bundle) []error {
	var errs []error
	for _, w := range ourWorkloads(b) {
		volumes := map[string]corev1.Volume{}
		for _, v := range w.spec.Volumes {
			volumes[v.Name] = v
		}
		for _, c := range w.spec.Containers {
			s := containerSecurity(b, c)
			if s == nil {
				continue
			}
			for _, f := range s.files() {
				if err := secretFileMounted(b, c, volumes, f); err != nil {
					errs = append(errs, fmt.Errorf("%s container %s: %w", w, c.Name, err))
				}
			}
		}
	}
	return errs
}

func secretFileMounted(b *bundle, c corev1.Container, volumes map[string]corev1.Volume, file string) error {
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok {
			continue
		}
		v := volumes[m.Name]
		if v.Secret == nil {
			return fmt.Errorf("%s is in the mount of volume %s, which is not a Secret", file, m.Name)
		}
		if !m.ReadOnly {
			return fmt.Errorf("%s: the mount of Secret volume %s is not readOnly", file, m.Name)
		}
		if isTrue(v.Secret.Optional) {
			return fmt.Errorf("%s is read from Secret %s, which is optional: without it the binary fails at start instead of the pod waiting for the Secret", file, v.Secret.SecretName)
		}
		key := ""
		for _, it := range v.Secret.Items {
			if path.Clean(it.Path) == path.Clean(rel) {
				key = it.Key
			}
		}
		if key == "" {
			return fmt.Errorf("%s: %s is not among the items of Secret %s (list every key the pod needs, so that a missing key stops the mount)", file, rel, v.Secret.SecretName)
		}
		if sec := b.secrets[v.Secret.SecretName]; sec != nil {
			if _, ok := sec.Data[key]; !ok {
				if _, ok := sec.StringData[key]; !ok {
					return fmt.Errorf("%s: Secret %s has no key %s", file, v.Secret.SecretName, key)
				}
			}
		}
		return nil
	}
	return fmt.Errorf("%s is not in a mounted Secret", file)
}

// checkSecurityUniform: the coordinator and the workers agree on TLS and
// gossip encryption (a mixed cluster cannot talk).
func checkSecurityUniform(b *bundle) []error {
	type seen struct {
		what     string
		tls, enc bool
	}
	var all []seen
	for _, w := range ourWorkloads(b) {
		for _, c := range w.spec.Containers {
			if s := containerSecurity(b, c); s != nil {
				all = append(all, seen{fmt.Sprintf("%s container %s", w, c.Name), s.tls.Enabled(), s.encrypted()})
			}
		}
	}
	var errs []error
	for _, x := range all[min(1, len(all)):] {
		if x.tls != all[0].tls {
			errs = append(errs, fmt.Errorf("%s has TLS %v, %s has %v: a mixed cluster cannot connect", x.what, x.tls, all[0].what, all[0].tls))
		}
		if x.enc != all[0].enc {
			errs = append(errs, fmt.Errorf("%s has gossip encryption (gossip key) %v, %s has %v: members without the key cannot join", x.what, x.enc, all[0].what, all[0].enc))
		}
	}
	return errs
}

// checkMetrics: every binary serves metrics, on a container port named
// "metrics", and the pod is annotated for Prometheus with that port.
func checkMetrics(b *bundle) []error {
	var errs []error
	for _, w := range ourWorkloads(b) {
		var annot map[string]string
		switch w.kind {
		case "StatefulSet":
			for _, s := range b.statefulSets {
				if s.Name == w.name {
					annot = s.Spec.Template.Annotations
				}
			}
		case "Job":
			for _, j := range b.jobs {
				if j.Name == w.name {
					annot = j.Spec.Template.Annotations
				}
			}
		}
		for _, c := range w.spec.Containers {
			s := containerSecurity(b, c)
			if s == nil {
				continue
			}
			if s.metricsAddr == "" {
				errs = append(errs, fmt.Errorf("%s container %s: no --metrics-addr", w, c.Name))
				continue
			}
			host, port, err := net.SplitHostPort(s.metricsAddr)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s container %s: --metrics-addr %q: %w", w, c.Name, s.metricsAddr, err))
				continue
			}
			if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
				// The coordinator's default (127.0.0.1:8070, for a workstation)
				// cannot be scraped from outside the pod.
				errs = append(errs, fmt.Errorf("%s container %s: --metrics-addr %s listens on loopback only: Prometheus cannot scrape it", w, c.Name, s.metricsAddr))
				continue
			}
			var named *corev1.ContainerPort
			for i := range c.Ports {
				if c.Ports[i].Name == metricsPortName {
					named = &c.Ports[i]
				}
			}
			switch {
			case named == nil:
				errs = append(errs, fmt.Errorf("%s container %s: no container port named %s", w, c.Name, metricsPortName))
			case strconv.Itoa(int(named.ContainerPort)) != port:
				errs = append(errs, fmt.Errorf("%s container %s: port %s is %d, --metrics-addr serves %s", w, c.Name, metricsPortName, named.ContainerPort, port))
			case named.Protocol != "" && named.Protocol != corev1.ProtocolTCP:
				errs = append(errs, fmt.Errorf("%s container %s: port %s is %s, want TCP", w, c.Name, metricsPortName, named.Protocol))
			}
			if annot[scrapeAnnot] != "true" || annot[portAnnot] != port {
				errs = append(errs, fmt.Errorf("%s: pod annotations %s=%q %s=%q, want \"true\" and the metrics port %s", w, scrapeAnnot, annot[scrapeAnnot], portAnnot, annot[portAnnot], port))
			}
		}
	}
	return errs
}

// secretVolumesRead returns the names of the workload's Secret volumes that
// its containers' flags read files from.
func secretVolumesRead(b *bundle, w workload) map[string]bool {
	read := map[string]bool{}
	for _, c := range w.spec.Containers {
		s := containerSecurity(b, c)
		if s == nil {
			continue
		}
		for _, f := range s.files() {
			for _, m := range c.VolumeMounts {
				if strings.HasPrefix(f, strings.TrimSuffix(m.MountPath, "/")+"/") {
					read[m.Name] = true
				}
			}
		}
	}
	return read
}
