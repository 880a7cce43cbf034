package k8stest

import (
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Facts the manifests must agree on with the image and the binaries.
const (
	coordinatorBinary = "/usr/local/bin/coordinator"
	workerBinary      = "/usr/local/bin/worker"
	gossipPort        = 7946
)

// workload is a pod template and what owns it.
type workload struct {
	kind, name string
	selector   *metav1.LabelSelector
	labels     map[string]string
	spec       *corev1.PodSpec
	replicas   int32
}

func (w workload) String() string { return w.kind + "/" + w.name }

func (b *bundle) workloads() []workload {
	var ws []workload
	for _, s := range b.statefulSets {
		ws = append(ws, workload{"StatefulSet", s.Name, s.Spec.Selector, s.Spec.Template.Labels, &s.Spec.Template.Spec, replicas(s.Spec.Replicas)})
	}
	for _, d := range b.deployments {
		ws = append(ws, workload{"Deployment", d.Name, d.Spec.Selector, d.Spec.Template.Labels, &d.Spec.Template.Spec, replicas(d.Spec.Replicas)})
	}
	for _, j := range b.jobs {
		ws = append(ws, workload{"Job", j.Name, j.Spec.Selector, j.Spec.Template.Labels, &j.Spec.Template.Spec, 1})
	}
	for _, p := range b.pods {
		ws = append(ws, workload{"Pod", p.Name, nil, p.Labels, &p.Spec, 1})
	}
	return ws
}

func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

// check is one named rule over a rendered bundle.
type check struct {
	name string
	fn   func(*bundle) []error
}

// bundleChecks are the rules every overlay must pass.
var bundleChecks = []check{
	{"selectors match pod labels", checkSelectors},
	{"services select pods and name their ports", checkServices},
	{"gossip service", checkGossipService},
	{"probes", checkProbes},
	{"resources", checkResources},
	{"security", checkSecurity},
	{"references resolve", checkReferences},
	{"flags exist and validate", checkFlags},
	{"run configuration fits the workers", checkRunConfig},
	{"coordinator job", checkCoordinatorJob},
	{"probes speak TLS when the server does", checkTLSProbes},
	{"secret files mounted", checkSecretFiles},
	{"TLS and gossip key on every member or none", checkSecurityUniform},
	{"metrics port", checkMetrics},
}

func runChecks(b *bundle) []error {
	var errs []error
	for _, c := range bundleChecks {
		for _, err := range c.fn(b) {
			errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
		}
	}
	return errs
}

func selects(sel *metav1.LabelSelector, podLabels map[string]string) (bool, error) {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false, err
	}
	return !s.Empty() && s.Matches(labels.Set(podLabels)), nil
}

func checkSelectors(b *bundle) []error {
	var errs []error
	for _, w := range b.workloads() {
		if w.kind == "Pod" || (w.kind == "Job" && w.selector == nil) {
			continue // Jobs get a generated selector unless manualSelector is set
		}
		ok, err := selects(w.selector, w.labels)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: selector: %w", w, err))
		} else if !ok {
			errs = append(errs, fmt.Errorf("%s: selector %v does not match the pod template labels %v", w, w.selector, w.labels))
		}
	}
	for _, p := range b.pdbs {
		if n := len(matchingWorkloads(b, p.Spec.Selector)); n == 0 {
			errs = append(errs, fmt.Errorf("PodDisruptionBudget/%s selects no pod template", p.Name))
		}
		if (p.Spec.MinAvailable == nil) == (p.Spec.MaxUnavailable == nil) {
			errs = append(errs, fmt.Errorf("PodDisruptionBudget/%s: set exactly one of minAvailable and maxUnavailable", p.Name))
		}
	}
	return errs
}

func matchingWorkloads(b *bundle, sel *metav1.LabelSelector) []workload {
	var out []workload
	for _, w := range b.workloads() {
		if w.kind == "Pod" {
			continue
		}
		if ok, err := selects(sel, w.labels); err == nil && ok {
			out = append(out, w)
		}
	}
	return out
}

func checkServices(b *bundle) []error {
	var errs []error
	for _, s := range b.services {
		if len(s.Spec.Selector) == 0 {
			errs = append(errs, fmt.Errorf("Service/%s has no selector", s.Name))
			continue
		}
		ws := matchingWorkloads(b, &metav1.LabelSelector{MatchLabels: s.Spec.Selector})
		if len(ws) == 0 {
			errs = append(errs, fmt.Errorf("Service/%s: selector %v selects no pod", s.Name, s.Spec.Selector))
			continue
		}
		for _, sp := range s.Spec.Ports {
			target := sp.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(sp.Port)
			}
			proto := sp.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			for _, w := range ws {
				if !podHasPort(w.spec, target, proto) {
					errs = append(errs, fmt.Errorf("Service/%s port %q: %s has no %s container port %s", s.Name, sp.Name, w, proto, target.String()))
				}
			}
		}
	}
	return errs
}

// podHasPort reports whether a container of the pod declares the port, by
// name or number, with the protocol.
func podHasPort(spec *corev1.PodSpec, port intstr.IntOrString, proto corev1.Protocol) bool {
	for _, c := range spec.Containers {
		if containerPort(c, port, proto) {
			return true
		}
	}
	return false
}

func containerPort(c corev1.Container, port intstr.IntOrString, proto corev1.Protocol) bool {
	for _, p := range c.Ports {
		pp := p.Protocol
		if pp == "" {
			pp = corev1.ProtocolTCP
		}
		if pp != proto {
			continue
		}
		if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
			return true
		}
	}
	return false
}

// gossipService returns the headless Service the workers join through.
func gossipService(b *bundle) *corev1.Service {
	for _, s := range b.services {
		if s.Spec.ClusterIP == corev1.ClusterIPNone {
			return s
		}
	}
	return nil
}

func checkGossipService(b *bundle) []error {
	s := gossipService(b)
	if s == nil {
		return []error{fmt.Errorf("no headless Service (clusterIP: None) for gossip")}
	}
	var errs []error
	if !s.Spec.PublishNotReadyAddresses {
		errs = append(errs, fmt.Errorf("Service/%s: publishNotReadyAddresses must be true (workers are not Ready before they join)", s.Name))
	}
	for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP} {
		found := false
		for _, p := range s.Spec.Ports {
			if p.Port == gossipPort && (p.Protocol == proto || (p.Protocol == "" && proto == corev1.ProtocolTCP)) {
				found = true
			}
		}
		if !found {
			errs = append(errs, fmt.Errorf("Service/%s: no port %d/%s (memberlist needs TCP and UDP)", s.Name, gossipPort, proto))
		}
	}
	ws := matchingWorkloads(b, &metav1.LabelSelector{MatchLabels: s.Spec.Selector})
	for _, want := range []string{coordinatorBinary, workerBinary} {
		found := false
		for _, w := range ws {
			for _, c := range w.spec.Containers {
				found = found || (len(c.Command) > 0 && c.Command[0] == want)
			}
		}
		if !found {
			errs = append(errs, fmt.Errorf("Service/%s does not select the pods running %s", s.Name, want))
		}
	}
	for _, st := range b.statefulSets {
		if st.Spec.ServiceName != s.Name {
			errs = append(errs, fmt.Errorf("StatefulSet/%s: serviceName %q is not the headless Service %q", st.Name, st.Spec.ServiceName, s.Name))
		}
		if st.Spec.PodManagementPolicy != "Parallel" {
			errs = append(errs, fmt.Errorf("StatefulSet/%s: podManagementPolicy %q, want Parallel (a worker is Ready only after it joined)", st.Name, st.Spec.PodManagementPolicy))
		}
	}
	return errs
}

func checkProbes(b *bundle) []error {
	var errs []error
	for _, w := range ourWorkloads(b) {
		for _, c := range w.spec.Containers {
			probes := map[string]*corev1.Probe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe, "startupProbe": c.StartupProbe}
			for _, name := range []string{"readinessProbe", "livenessProbe"} {
				if probes[name] == nil {
					errs = append(errs, fmt.Errorf("%s container %s: no %s", w, c.Name, name))
				}
			}
			for name, p := range probes {
				if p == nil {
					continue
				}
				if err := probePortExists(c, p); err != nil {
					errs = append(errs, fmt.Errorf("%s container %s %s: %w", w, c.Name, name, err))
				}
			}
			// Readiness must ask the gRPC health service on the binary's gRPC port.
			if r := c.ReadinessProbe; r != nil {
				port, err := grpcPortOf(c)
				switch {
				case err != nil:
					errs = append(errs, fmt.Errorf("%s container %s: %w", w, c.Name, err))
				case r.GRPC == nil && r.Exec == nil:
					errs = append(errs, fmt.Errorf("%s container %s: readinessProbe must ask grpc.health.v1 (grpc: or exec healthcheck)", w, c.Name))
				case r.GRPC != nil && int(r.GRPC.Port) != port:
					errs = append(errs, fmt.Errorf("%s container %s: readinessProbe asks port %d, the binary serves gRPC on %d", w, c.Name, r.GRPC.Port, port))
				}
			}
		}
	}
	return errs
}

func probePortExists(c corev1.Container, p *corev1.Probe) error {
	switch {
	case p.GRPC != nil:
		if !containerPort(c, intstr.FromInt32(p.GRPC.Port), corev1.ProtocolTCP) {
			return fmt.Errorf("grpc port %d is not a container port", p.GRPC.Port)
		}
	case p.TCPSocket != nil:
		if !containerPort(c, p.TCPSocket.Port, corev1.ProtocolTCP) {
			return fmt.Errorf("tcpSocket port %s is not a container port", p.TCPSocket.Port.String())
		}
	case p.HTTPGet != nil:
		if !containerPort(c, p.HTTPGet.Port, corev1.ProtocolTCP) {
			return fmt.Errorf("httpGet port %s is not a container port", p.HTTPGet.Port.String())
		}
	case p.Exec != nil:
		if len(p.Exec.Command) < 2 || p.Exec.Command[1] != "healthcheck" {
			return fmt.Errorf("exec probe %v: want the binary's healthcheck subcommand (there is no shell)", p.Exec.Command)
		}
	default:
		return fmt.Errorf("no handler")
	}
	return nil
}

// grpcPortOf returns the port of the container's --grpc-addr flag (or the
// binary's default).
func grpcPortOf(c corev1.Container) (int, error) {
	addr := map[string]string{coordinatorBinary: ":7070", workerBinary: ":7071"}[firstOf(c.Command)]
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--grpc-addr="); ok {
			addr = v
		}
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("--grpc-addr %q: %w", addr, err)
	}
	return strconv.Atoi(port)
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// ourWorkloads are the pods running the ringtrain binaries.
func ourWorkloads(b *bundle) []workload {
	var out []workload
	for _, w := range b.workloads() {
		for _, c := range w.spec.Containers {
			if cmd := firstOf(c.Command); cmd == coordinatorBinary || cmd == workerBinary {
				out = append(out, w)
				break
			}
		}
	}
	return out
}

func checkResources(b *bundle) []error {
	var errs []error
	for _, w := range b.workloads() {
		for _, c := range append(append([]corev1.Container(nil), w.spec.InitContainers...), w.spec.Containers...) {
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, hasReq := c.Resources.Requests[r]
				lim, hasLim := c.Resources.Limits[r]
				switch {
				case !hasReq:
					errs = append(errs, fmt.Errorf("%s container %s: no %s request", w, c.Name, r))
				case !hasLim:
					errs = append(errs, fmt.Errorf("%s container %s: no %s limits", w, c.Name, r))
				case req.Cmp(lim) > 0:
					errs = append(errs, fmt.Errorf("%s container %s: %s request %s exceeds the limit %s", w, c.Name, r, req.String(), lim.String()))
				case req.Cmp(resource.Quantity{}) <= 0:
					errs = append(errs, fmt.Errorf("%s container %s: %s request must be positive", w, c.Name, r))
				}
			}
		}
	}
	return errs
}

// checkSecurity holds every pod to the "restricted" Pod Security Standard and
// to the image's numeric user.
func checkSecurity(b *bundle) []error {
	var errs []error
	for _, w := range b.workloads() {
		psc := w.spec.SecurityContext
		if psc == nil {
			psc = &corev1.PodSecurityContext{}
		}
		if w.spec.HostNetwork || w.spec.HostPID || w.spec.HostIPC {
			errs = append(errs, fmt.Errorf("%s: uses a host namespace", w))
		}
		if w.spec.AutomountServiceAccountToken == nil || *w.spec.AutomountServiceAccountToken {
			errs = append(errs, fmt.Errorf("%s: automountServiceAccountToken must be false (no API access is needed)", w))
		}
		for _, c := range w.spec.Containers {
			sc := c.SecurityContext
			if sc == nil {
				errs = append(errs, fmt.Errorf("%s container %s: no securityContext", w, c.Name))
				continue
			}
			if !isTrue(sc.RunAsNonRoot) && !isTrue(psc.RunAsNonRoot) {
				errs = append(errs, fmt.Errorf("%s container %s: runAsNonRoot is not set", w, c.Name))
			}
			uid := sc.RunAsUser
			if uid == nil {
				uid = psc.RunAsUser
			}
			if uid == nil || *uid == 0 {
				errs = append(errs, fmt.Errorf("%s container %s: runAsUser must be a non-zero number", w, c.Name))
			}
			if !isTrue(sc.ReadOnlyRootFilesystem) {
				errs = append(errs, fmt.Errorf("%s container %s: readOnlyRootFilesystem is not true", w, c.Name))
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				errs = append(errs, fmt.Errorf("%s container %s: allowPrivilegeEscalation must be false", w, c.Name))
			}
			if isTrue(sc.Privileged) {
				errs = append(errs, fmt.Errorf("%s container %s: privileged", w, c.Name))
			}
			if sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) > 0 {
				errs = append(errs, fmt.Errorf("%s container %s: capabilities must drop ALL and add none", w, c.Name))
			}
			sp := sc.SeccompProfile
			if sp == nil {
				sp = psc.SeccompProfile
			}
			if sp == nil || sp.Type != corev1.SeccompProfileTypeRuntimeDefault {
				errs = append(errs, fmt.Errorf("%s container %s: seccompProfile must be RuntimeDefault", w, c.Name))
			}
		}
	}
	return errs
}

func isTrue(b *bool) bool { return b != nil && *b }

func checkReferences(b *bundle) []error {
	var errs []error
	for _, w := range b.workloads() {
		if sa := w.spec.ServiceAccountName; sa != "" && b.serviceAccounts[sa] == nil {
			errs = append(errs, fmt.Errorf("%s: ServiceAccount %q is not in the bundle", w, sa))
		}
		volumes := map[string]bool{}
		for _, v := range w.spec.Volumes {
			volumes[v.Name] = true
			switch {
			case v.PersistentVolumeClaim != nil:
				if b.claims[v.PersistentVolumeClaim.ClaimName] == nil && w.kind != "Pod" {
					errs = append(errs, fmt.Errorf("%s volume %s: no PersistentVolumeClaim %q", w, v.Name, v.PersistentVolumeClaim.ClaimName))
				}
			case v.Secret != nil:
				// A Secret the operator creates (the TLS files and the gossip
				// key) may be required when a flag reads a file from it.
				if b.secrets[v.Secret.SecretName] == nil && !isTrue(v.Secret.Optional) && !secretVolumesRead(b, w)[v.Name] {
					errs = append(errs, fmt.Errorf("%s volume %s: Secret %q is neither in the bundle nor optional, and no flag reads a file from it", w, v.Name, v.Secret.SecretName))
				}
			case v.ConfigMap != nil:
				if b.configMaps[v.ConfigMap.Name] == nil && !isTrue(v.ConfigMap.Optional) {
					errs = append(errs, fmt.Errorf("%s volume %s: no ConfigMap %q", w, v.Name, v.ConfigMap.Name))
				}
			}
		}
		for _, c := range w.spec.Containers {
			for _, m := range c.VolumeMounts {
				if !volumes[m.Name] {
					errs = append(errs, fmt.Errorf("%s container %s: mount of unknown volume %q", w, c.Name, m.Name))
				}
			}
			if _, err := containerEnv(b, c); err != nil {
				errs = append(errs, fmt.Errorf("%s container %s: %w", w, c.Name, err))
			}
		}
	}
	return errs
}

// containerEnv returns the container's environment as the kubelet builds it
// (envFrom first, then env), with field references as placeholders.
func containerEnv(b *bundle, c corev1.Container) (map[string]string, error) {
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm := b.configMaps[ef.ConfigMapRef.Name]
			if cm == nil {
				if isTrue(ef.ConfigMapRef.Optional) {
					continue
				}
				return nil, fmt.Errorf("envFrom: no ConfigMap %q in the bundle", ef.ConfigMapRef.Name)
			}
			for k, v := range cm.Data {
				env[ef.Prefix+k] = v
			}
		case ef.SecretRef != nil:
			s := b.secrets[ef.SecretRef.Name]
			if s == nil {
				if isTrue(ef.SecretRef.Optional) {
					continue
				}
				return nil, fmt.Errorf("envFrom: Secret %q is neither in the bundle nor optional", ef.SecretRef.Name)
			}
			for k, v := range s.Data {
				env[ef.Prefix+k] = string(v)
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil:
			env[e.Name] = "field-" + path.Base(strings.ReplaceAll(e.ValueFrom.FieldRef.FieldPath, ".", "/"))
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			cm := b.configMaps[ref.Name]
			v, ok := "", false
			if cm != nil {
				v, ok = cm.Data[ref.Key]
			}
			if !ok && !isTrue(ref.Optional) {
				return nil, fmt.Errorf("env %s: no key %q in ConfigMap %q", e.Name, ref.Key, ref.Name)
			}
			env[e.Name] = v
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if b.secrets[ref.Name] == nil && !isTrue(ref.Optional) {
				return nil, fmt.Errorf("env %s: Secret %q is neither in the bundle nor optional", e.Name, ref.Name)
			}
			env[e.Name] = "secret"
		default:
			env[e.Name] = "resource"
		}
	}
	return env, nil
}

// expand replaces $(VAR) references as the kubelet does ($$ escapes a $) and
// returns the names it could not resolve.
func expand(s string, env map[string]string) (string, []string) {
	var out strings.Builder
	var missing []string
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			out.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			out.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				out.WriteString(s[i:])
				return out.String(), missing
			}
			name := s[i+2 : i+2+end]
			if v, ok := env[name]; ok {
				out.WriteString(v)
			} else {
				out.WriteString(s[i : i+3+end])
				missing = append(missing, name)
			}
			i += 2 + end
		default:
			out.WriteByte('$')
		}
	}
	return out.String(), missing
}

// resolvedArgs returns the container's args with $(VAR) references expanded.
func resolvedArgs(b *bundle, c corev1.Container) ([]string, error) {
	env, err := containerEnv(b, c)
	if err != nil {
		return nil, err
	}
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		v, missing := expand(a, env)
		if len(missing) > 0 {
			return nil, fmt.Errorf("arg %q refers to %v, which the container's environment does not define", a, missing)
		}
		args[i] = v
	}
	return args, nil
}

func checkFlags(b *bundle) []error {
	var errs []error
	for _, w := range ourWorkloads(b) {
		for _, c := range w.spec.Containers {
			args, err := resolvedArgs(b, c)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s container %s: %w", w, c.Name, err))
				continue
			}
			if _, err := parseFlags(firstOf(c.Command), args); err != nil {
				errs = append(errs, fmt.Errorf("%s container %s: %w", w, c.Name, err))
			}
		}
	}
	return errs
}

// checkRunConfig checks what ties the coordinator's flags to the rest: the
// workers can reach --min-workers, they join through the gossip Service on the
// port every member binds, and --out is on the outputs claim.
func checkRunConfig(b *bundle) []error {
	var errs []error
	var coord *coordinatorRun
	var workers []workerRun
	for _, w := range ourWorkloads(b) {
		for _, c := range w.spec.Containers {
			args, err := resolvedArgs(b, c)
			if err != nil {
				continue // reported by checkFlags
			}
			run, err := parseFlags(firstOf(c.Command), args)
			if err != nil {
				continue
			}
			switch r := run.(type) {
			case *coordinatorRun:
				if coord != nil {
					errs = append(errs, fmt.Errorf("more than one coordinator (%s)", w))
				}
				coord = r
				if !mountedFromClaim(w.spec, c, r.opts.Job.Out) {
					errs = append(errs, fmt.Errorf("%s: --out %s is not a mount of a PersistentVolumeClaim", w, r.opts.Job.Out))
				}
			case *workerRun:
				r.replicas = w.replicas
				workers = append(workers, *r)
			}
		}
	}
	if coord == nil || len(workers) == 0 {
		return append(errs, fmt.Errorf("want a coordinator and workers, have coordinator=%v and %d worker sets", coord != nil, len(workers)))
	}
	total := int32(0)
	for _, w := range workers {
		total += w.replicas
	}
	if int32(coord.opts.MinWorkers) > total {
		errs = append(errs, fmt.Errorf("--min-workers %d exceeds the %d worker replicas: training would never start", coord.opts.MinWorkers, total))
	}
	if err := samePort(coord.opts.GossipAddr, gossipPort); err != nil {
		errs = append(errs, fmt.Errorf("coordinator --gossip-addr: %w", err))
	}
	gs := gossipService(b)
	for _, w := range workers {
		if err := samePort(w.opts.GossipAddr, gossipPort); err != nil {
			errs = append(errs, fmt.Errorf("worker --gossip-addr: %w", err))
		}
		for _, j := range splitComma(w.opts.Join) {
			host, port, _ := net.SplitHostPort(j)
			if gs == nil || (host != gs.Name && !strings.HasPrefix(host, gs.Name+".")) {
				errs = append(errs, fmt.Errorf("worker --join %s: host is not the headless gossip Service", j))
			}
			if port != strconv.Itoa(gossipPort) {
				errs = append(errs, fmt.Errorf("worker --join %s: port is not %d", j, gossipPort))
			}
		}
	}
	return errs
}

func samePort(addr string, want int) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if port != strconv.Itoa(want) {
		return fmt.Errorf("%s does not bind port %d, the gossip Service's", addr, want)
	}
	return nil
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// mountedFromClaim reports whether dir is (under) a mount of a PVC volume.
func mountedFromClaim(spec *corev1.PodSpec, c corev1.Container, dir string) bool {
	claims := map[string]bool{}
	for _, v := range spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			claims[v.Name] = true
		}
	}
	for _, m := range c.VolumeMounts {
		if claims[m.Name] && !m.ReadOnly && (dir == m.MountPath || strings.HasPrefix(dir, strings.TrimSuffix(m.MountPath, "/")+"/")) {
			return true
		}
	}
	return false
}

func checkCoordinatorJob(b *bundle) []error {
	var errs []error
	for _, j := range b.jobs {
		if j.Spec.Completions != nil && *j.Spec.Completions != 1 {
			errs = append(errs, fmt.Errorf("Job/%s: completions must be 1 (one coordinator per run)", j.Name))
		}
		if j.Spec.Parallelism != nil && *j.Spec.Parallelism != 1 {
			errs = append(errs, fmt.Errorf("Job/%s: parallelism must be 1", j.Name))
		}
		rp := j.Spec.Template.Spec.RestartPolicy
		if rp != corev1.RestartPolicyNever && rp != corev1.RestartPolicyOnFailure {
			errs = append(errs, fmt.Errorf("Job/%s: restartPolicy %q", j.Name, rp))
		}
		if j.Spec.PodFailurePolicy != nil && rp != corev1.RestartPolicyNever {
			errs = append(errs, fmt.Errorf("Job/%s: podFailurePolicy needs restartPolicy Never", j.Name))
		}
	}
	if len(b.jobs) != 1 {
		errs = append(errs, fmt.Errorf("want exactly one Job (the coordinator), have %d", len(b.jobs)))
	}
	return errs
}
