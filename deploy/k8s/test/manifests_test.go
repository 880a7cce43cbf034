package k8stest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func joinErrs(errs []error) string { return errors.Join(errs...).Error() }

// checkImages checks that every ringtrain container runs the compose file's
// image.
func checkImages(b *bundle, image string) []error {
	var errs []error
	for _, w := range ourWorkloads(b) {
		for _, c := range w.spec.Containers {
			if c.Image != image {
				errs = append(errs, fmt.Errorf("%s container %s: image %q, the compose file uses %q", w, c.Name, c.Image, image))
			}
			if c.ImagePullPolicy != corev1.PullIfNotPresent {
				errs = append(errs, fmt.Errorf("%s container %s: imagePullPolicy %q, want IfNotPresent (the image is loaded into the cluster, not pulled)", w, c.Name, c.ImagePullPolicy))
			}
		}
	}
	return errs
}

// checkNamespace checks that an overlay puts everything in one namespace it
// creates, with the restricted Pod Security Standard enforced.
func checkNamespace(b *bundle) []error {
	if len(b.namespaces) != 1 {
		return []error{fmt.Errorf("want one Namespace object, have %d", len(b.namespaces))}
	}
	ns := b.namespaces[0]
	var errs []error
	if b.kinds[0] != "*v1.Namespace" {
		errs = append(errs, fmt.Errorf("the Namespace is not the first object rendered (set sortOptions: order: legacy), the order is %v", b.kinds))
	}
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		errs = append(errs, fmt.Errorf("Namespace/%s: pod-security.kubernetes.io/enforce is not restricted", ns.Name))
	}
	var names []string
	for _, s := range b.services {
		if s.Namespace != ns.Name {
			names = append(names, "Service/"+s.Name)
		}
	}
	for _, st := range b.statefulSets {
		if st.Namespace != ns.Name {
			names = append(names, "StatefulSet/"+st.Name)
		}
	}
	for _, j := range b.jobs {
		if j.Namespace != ns.Name {
			names = append(names, "Job/"+j.Name)
		}
	}
	if len(names) > 0 {
		errs = append(errs, fmt.Errorf("not in namespace %s: %v", ns.Name, names))
	}
	return errs
}

func mustCompose(t *testing.T) *composeFileSpec {
	t.Helper()
	f, err := loadCompose(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func mustRender(t *testing.T, dir string) *bundle {
	t.Helper()
	b, err := render(dir)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBaseAndOverlays(t *testing.T) {
	image := mustCompose(t).Services["coordinator"].Image
	dirs, err := overlayDirs()
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 2 {
		t.Fatalf("want at least two overlays (a small and a larger one), have %v", dirs)
	}
	workers := map[string]int32{}
	for _, dir := range append([]string{baseDir}, dirs...) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			b := mustRender(t, dir)
			errs := append(runChecks(b), checkImages(b, image)...)
			if dir != baseDir {
				errs = append(errs, checkNamespace(b)...)
			}
			for _, err := range errs {
				t.Error(err)
			}
			for _, s := range b.statefulSets {
				workers[filepath.Base(dir)] += replicas(s.Spec.Replicas)
			}
		})
	}
	if workers["small"] == 0 || workers["large"] <= workers["small"] {
		t.Errorf("want overlays small and large with more workers in large, have %v", workers)
	}
}

func TestComposeFile(t *testing.T) {
	for _, err := range checkCompose(mustCompose(t), mustRender(t, baseDir)) {
		t.Error(err)
	}
}

func TestTools(t *testing.T) {
	entries, err := os.ReadDir(toolsDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := decodeFile(filepath.Join(toolsDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, err := range append(checkSecurity(b), checkResources(b)...) {
			t.Errorf("%s: %v", e.Name(), err)
		}
	}
}

// TestChecksCatchBrokenManifests breaks the small overlay one way at a time
// and expects the checks to say what is wrong.
func TestChecksCatchBrokenManifests(t *testing.T) {
	worker := func(b *bundle) *corev1.Container { return &b.statefulSets[0].Spec.Template.Spec.Containers[0] }
	coord := func(b *bundle) *corev1.Container { return &b.jobs[0].Spec.Template.Spec.Containers[0] }
	runConfig := func(b *bundle) *corev1.ConfigMap {
		for _, cm := range b.configMaps {
			return cm
		}
		return nil
	}
	tests := []struct {
		name   string
		mutate func(b *bundle)
		want   string
	}{
		{"unknown worker flag", func(b *bundle) { c := worker(b); c.Args = append(c.Args, "--no-such-flag=1") }, "flag provided but not defined: -no-such-flag"},
		{"invalid coordinator value", func(b *bundle) { runConfig(b).Data["RINGTRAIN_LR"] = "-1" }, "--lr: must be a positive number"},
		{"undefined variable", func(b *bundle) { c := coord(b); c.Args = append(c.Args, "--seed=$(NOPE)") }, "does not define"},
		{"missing configmap", func(b *bundle) { coord(b).EnvFrom[0].ConfigMapRef.Name = "gone" }, `no ConfigMap "gone"`},
		{"statefulset selector", func(b *bundle) {
			b.statefulSets[0].Spec.Selector.MatchLabels["app.kubernetes.io/component"] = "other"
		}, "does not match the pod template labels"},
		{"service selects nothing", func(b *bundle) { b.services[0].Spec.Selector = map[string]string{"app": "none"} }, "selects no pod"},
		{"service port missing", func(b *bundle) {
			gossipService(b).Spec.Ports[1].TargetPort = intstr.FromString("nope")
		}, "has no UDP container port nope"},
		{"not published before ready", func(b *bundle) { gossipService(b).Spec.PublishNotReadyAddresses = false }, "publishNotReadyAddresses"},
		{"probe port", func(b *bundle) { worker(b).ReadinessProbe.GRPC.Port = 9999 }, "grpc port 9999 is not a container port"},
		{"liveness missing", func(b *bundle) { coord(b).LivenessProbe = nil }, "no livenessProbe"},
		{"writable root", func(b *bundle) { f := false; worker(b).SecurityContext.ReadOnlyRootFilesystem = &f }, "readOnlyRootFilesystem"},
		{"capabilities kept", func(b *bundle) { coord(b).SecurityContext.Capabilities = nil }, "drop ALL"},
		{"no seccomp", func(b *bundle) { b.jobs[0].Spec.Template.Spec.SecurityContext.SeccompProfile = nil }, "RuntimeDefault"},
		{"no limits", func(b *bundle) { delete(worker(b).Resources.Limits, corev1.ResourceMemory) }, "no memory limits"},
		{"too few workers", func(b *bundle) { runConfig(b).Data["RINGTRAIN_MIN_WORKERS"] = "5" }, "--min-workers 5 exceeds the 2 worker replicas"},
		{"join elsewhere", func(b *bundle) { worker(b).Args[0] = "--join=somewhere:7946" }, "host is not the headless gossip Service"},
		{"outputs not on the claim", func(b *bundle) { coord(b).Args[2] = "--out=/tmp/out" }, "is not a mount of a PersistentVolumeClaim"},
		{"required secret", func(b *bundle) {
			vs := b.jobs[0].Spec.Template.Spec.Volumes
			for i := range vs {
				if vs[i].Secret != nil {
					vs[i].Secret.Optional = nil
				}
			}
		}, "neither in the bundle nor optional"},
		{"pdb selects nothing", func(b *bundle) { b.pdbs[0].Spec.Selector.MatchLabels = map[string]string{"x": "y"} }, "selects no pod template"},
		{"ordered pods", func(b *bundle) { b.statefulSets[0].Spec.PodManagementPolicy = "OrderedReady" }, "want Parallel"},
	}
	small := filepath.Join(overlaysDir, "small")
	if errs := runChecks(mustRender(t, small)); len(errs) > 0 {
		t.Fatalf("the unbroken overlay fails: %v", joinErrs(errs))
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := mustRender(t, small)
			tc.mutate(b)
			errs := runChecks(b)
			if len(errs) == 0 {
				t.Fatalf("no check failed; want one saying %q", tc.want)
			}
			if msg := joinErrs(errs); !strings.Contains(msg, tc.want) {
				t.Fatalf("the checks say:\n%s\nwant %q", msg, tc.want)
			}
		})
	}
}

func TestComposeChecksCatchBrokenFiles(t *testing.T) {
	raw, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	base := mustRender(t, baseDir)
	tests := []struct {
		name, old, new, want string
	}{
		{"variable without default", "${RINGTRAIN_STEPS:-0}", "${RINGTRAIN_STEPS}", "variables without a default: [RINGTRAIN_STEPS]"},
		{"unknown flag", "--join=coordinator:7946", "--join=coordinator:7946\n      - --bogus", "flag provided but not defined: -bogus"},
		{"join another host", "--join=coordinator:7946", "--join=worker:7946", "want the coordinator service's gossip address"},
		{"root user", `user: "65532:65532"`, `user: "0:0"`, "is not a numeric non-root user"},
		{"other image", "${RINGTRAIN_IMAGE:-ringtrain:dev}", "${RINGTRAIN_IMAGE:-other:dev}", `the compose file uses "other:dev"`},
		{"writable", "read_only: true", "read_only: false", "read_only is not true"},
		{"healthcheck port", `"127.0.0.1:7070"`, `"127.0.0.1:7071"`, "does not ask the gRPC port 7070"},
		{"not waiting for health", "condition: service_healthy", "condition: service_started", "service_healthy"},
		{"too many min workers", "${RINGTRAIN_MIN_WORKERS:-3}", "${RINGTRAIN_MIN_WORKERS:-4}", "--min-workers 4 exceeds the default 3 workers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := string(raw)
			if !strings.Contains(text, tc.old) {
				t.Fatalf("the compose file no longer contains %q; update the test", tc.old)
			}
			f, err := parseCompose(strings.Replace(text, tc.old, tc.new, 1))
			var errs []error
			if err != nil {
				errs = []error{err}
			} else {
				errs = checkCompose(f, base)
			}
			if len(errs) == 0 || !strings.Contains(joinErrs(errs), tc.want) {
				t.Fatalf("errors %v, want one saying %q", errs, tc.want)
			}
		})
	}
}

func TestDecodeStrict(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"valid", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: b\n", ""},
		{"unknown field", "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: x\nspec:\n  replicass: 3\n", `unknown field "replicass"`},
		{"unknown nested field", "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  ports:\n  - port: 1\n    protocl: UDP\n", `unknown field "protocl"`},
		{"duplicate key", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  name: y\n", `key "name" already set`},
		{"wrong type", "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: x\nspec:\n  replicas: three\n", "cannot unmarshal"},
		{"unknown kind", "apiVersion: v1\nkind: Gadget\nmetadata:\n  name: x\n", `unexpected apiVersion "v1" kind "Gadget"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeStrict([]byte(tc.doc))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestExpand(t *testing.T) {
	env := map[string]string{"A": "1", "B": "two"}
	tests := []struct {
		in, want string
		missing  []string
	}{
		{"--x=$(A)", "--x=1", nil},
		{"$(A)$(B)", "1two", nil},
		{"--x=$$(A)", "--x=$(A)", nil},
		{"--x=$(C)", "--x=$(C)", []string{"C"}},
		{"--x=$(A", "--x=$(A", nil},
		{"cost $5", "cost $5", nil},
	}
	for _, tc := range tests {
		got, missing := expand(tc.in, env)
		if got != tc.want || fmt.Sprint(missing) != fmt.Sprint(tc.missing) {
			t.Errorf("expand(%q) = %q, %v; want %q, %v", tc.in, got, missing, tc.want, tc.missing)
		}
	}
}

// secureCompose is the override file that turns on TLS and gossip
// encryption, and the environment it requires.
const secureCompose = "../../compose/docker-compose.secure.yml"

// secureEnv is the environment the secure override is read with.
func secureEnv() map[string]string { return map[string]string{"RINGTRAIN_SECRETS_DIR": "/secrets"} }

// loadSecureCompose merges the secure override (text) into the base file.
func loadSecureCompose(t *testing.T, text string) (*composeFileSpec, error) {
	t.Helper()
	base := mustCompose(t)
	over, err := parseComposeEnv(text, secureEnv())
	if err != nil {
		return nil, err
	}
	return override(base, over)
}

func TestComposeSecure(t *testing.T) {
	raw, err := os.ReadFile(secureCompose)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseComposeEnv(string(raw), nil); err == nil || !strings.Contains(err.Error(), "RINGTRAIN_SECRETS_DIR (required") {
		t.Errorf("without RINGTRAIN_SECRETS_DIR the override must be refused, got %v", err)
	}
	f, err := loadSecureCompose(t, string(raw))
	if err != nil {
		t.Fatal(err)
	}
	base := mustRender(t, baseDir)
	for _, err := range checkCompose(f, base) {
		t.Error(err)
	}
	for name, s := range f.Services {
		prog := s.program()
		run, err := parseFlags(prog[0], prog[1:])
		if err != nil {
			t.Fatal(err)
		}
		sec := securityOf(run, nil)
		if !sec.tls.Enabled() || sec.gossipKey == "" {
			t.Errorf("service %s with the secure override: TLS %+v, gossip key file %q; want both", name, sec.tls, sec.gossipKey)
		}
		for _, file := range sec.files() {
			name := strings.TrimPrefix(file, "/run/secrets/")
			if host := f.Secrets[name].File; !strings.HasPrefix(host, "/secrets/") {
				t.Errorf("secret %s: file %q is not under $RINGTRAIN_SECRETS_DIR", name, host)
			}
		}
	}
	// The base file alone is plaintext on both services.
	for name, s := range mustCompose(t).Services {
		prog := s.program()
		run, err := parseFlags(prog[0], prog[1:])
		if err != nil {
			t.Fatal(err)
		}
		if sec := securityOf(run, nil); sec.tls.Enabled() || sec.encrypted() {
			t.Errorf("service %s of the base file has TLS or a gossip key; the secure variant is opt-in", name)
		}
	}
}

func TestComposeSecureChecksCatchBrokenFiles(t *testing.T) {
	raw, err := os.ReadFile(secureCompose)
	if err != nil {
		t.Fatal(err)
	}
	base := mustRender(t, baseDir)
	tests := []struct {
		name, old, new, want string
	}{
		{"healthcheck without TLS", `"--tls-cert", "/run/secrets/worker_cert", "--tls-key", "/run/secrets/worker_key", "--tls-ca", "/run/secrets/ca"]`, `]`, "healthcheck TLS files"},
		{"healthcheck with another cert", `"--tls-cert", "/run/secrets/coordinator_cert", "--tls-key"`, `"--tls-cert", "/run/secrets/worker_cert", "--tls-key"`, "healthcheck TLS files"},
		{"secret not listed", "secrets: [ca, worker_cert, worker_key, gossip_key]", "secrets: [ca, worker_cert, worker_key]", "does not list the secret gossip_key"},
		{"secret not declared", "  gossip_key:\n    file:", "  gossip_keys:\n    file:", "no top-level secret gossip_key"},
		{"file outside secrets", "--tls-ca=/run/secrets/ca\n      - --gossip-key-file", "--tls-ca=/etc/ca.pem\n      - --gossip-key-file", "/etc/ca.pem is not a compose secret"},
		{"worker without gossip key", "      - --gossip-key-file=/run/secrets/gossip_key\n    secrets: [ca, worker_cert", "    secrets: [ca, worker_cert", "members without the key cannot join"},
		{"worker without TLS", "      - --tls-cert=/run/secrets/worker_cert\n      - --tls-key=/run/secrets/worker_key\n      - --tls-ca=/run/secrets/ca\n", "", "a mixed cluster cannot connect"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := string(raw)
			if !strings.Contains(text, tc.old) {
				t.Fatalf("the secure override no longer contains %q; update the test", tc.old)
			}
			f, err := loadSecureCompose(t, strings.Replace(text, tc.old, tc.new, 1))
			var errs []error
			if err != nil {
				errs = []error{err}
			} else {
				errs = checkCompose(f, base)
			}
			if len(errs) == 0 || !strings.Contains(joinErrs(errs), tc.want) {
				t.Fatalf("errors %v, want one saying %q", errs, tc.want)
			}
		})
	}
}

// TestSecureOverlay: the large overlay (cross-node traffic) uses the secure
// component: every member has TLS and the gossip key, read from the Secret.
func TestSecureOverlay(t *testing.T) {
	b := mustRender(t, filepath.Join(overlaysDir, "large"))
	n := 0
	for _, w := range ourWorkloads(b) {
		for _, c := range w.spec.Containers {
			s := containerSecurity(b, c)
			if s == nil {
				t.Fatalf("%s container %s: flags do not parse", w, c.Name)
			}
			n++
			if !s.tls.Enabled() || s.gossipKey == "" {
				t.Errorf("%s container %s: TLS %+v, gossip key file %q; want both", w, c.Name, s.tls, s.gossipKey)
			}
		}
	}
	if n != 2 {
		t.Fatalf("want the coordinator and the workers, checked %d containers", n)
	}
	// The small overlay stays plaintext, with the Secret optional.
	for _, w := range ourWorkloads(mustRender(t, filepath.Join(overlaysDir, "small"))) {
		for _, v := range w.spec.Volumes {
			if v.Secret != nil && !isTrue(v.Secret.Optional) {
				t.Errorf("small overlay %s: Secret %s is required", w, v.Secret.SecretName)
			}
		}
	}
}

// TestChecksCatchBrokenSecureManifests breaks the large (secure) overlay one
// way at a time.
func TestChecksCatchBrokenSecureManifests(t *testing.T) {
	worker := func(b *bundle) *corev1.Container { return &b.statefulSets[0].Spec.Template.Spec.Containers[0] }
	coord := func(b *bundle) *corev1.Container { return &b.jobs[0].Spec.Template.Spec.Containers[0] }
	secretVol := func(spec *corev1.PodSpec) *corev1.SecretVolumeSource {
		for i := range spec.Volumes {
			if spec.Volumes[i].Secret != nil {
				return spec.Volumes[i].Secret
			}
		}
		return nil
	}
	dropArg := func(c *corev1.Container, prefix string) {
		var keep []string
		for _, a := range c.Args {
			if !strings.HasPrefix(a, prefix) {
				keep = append(keep, a)
			}
		}
		c.Args = keep
	}
	tests := []struct {
		name   string
		mutate func(b *bundle)
		want   string
	}{
		{"grpc probe with TLS", func(b *bundle) {
			worker(b).ReadinessProbe.Exec = nil
			worker(b).ReadinessProbe.GRPC = &corev1.GRPCAction{Port: 7071}
		}, "a grpc probe cannot speak TLS"},
		{"probe without TLS flags", func(b *bundle) {
			p := coord(b).LivenessProbe.Exec
			p.Command = p.Command[:4]
		}, "healthcheck TLS files"},
		{"probe on another port", func(b *bundle) {
			worker(b).ReadinessProbe.Exec.Command[2] = "--addr=127.0.0.1:7070"
		}, "does not ask the gRPC port 7071"},
		{"optional secret", func(b *bundle) {
			t := true
			secretVol(&b.jobs[0].Spec.Template.Spec).Optional = &t
		}, "which is optional"},
		{"key not in items", func(b *bundle) {
			v := secretVol(&b.statefulSets[0].Spec.Template.Spec)
			v.Items = v.Items[:len(v.Items)-1]
		}, "gossip.key is not among the items"},
		{"file not mounted", func(b *bundle) {
			dropArg(coord(b), "--tls-ca=")
			coord(b).Args = append(coord(b).Args, "--tls-ca=/etc/elsewhere/ca.pem")
		}, "/etc/elsewhere/ca.pem is not in a mounted Secret"},
		{"worker without gossip key", func(b *bundle) { dropArg(worker(b), "--gossip-key-file=") }, "members without the key cannot join"},
		{"worker without TLS", func(b *bundle) {
			dropArg(worker(b), "--tls-")
			worker(b).ReadinessProbe.Exec.Command = worker(b).ReadinessProbe.Exec.Command[:4]
		}, "a mixed cluster cannot connect"},
		{"no metrics port", func(b *bundle) {
			c := worker(b)
			var keep []corev1.ContainerPort
			for _, p := range c.Ports {
				if p.Name != metricsPortName {
					keep = append(keep, p)
				}
			}
			c.Ports = keep
		}, "no container port named metrics"},
		{"metrics left at the loopback default", func(b *bundle) { dropArg(coord(b), "--metrics-addr=") }, "listens on loopback only"},
		{"scrape annotation port", func(b *bundle) {
			b.jobs[0].Spec.Template.Annotations[portAnnot] = "9091"
		}, "want \"true\" and the metrics port 9090"},
	}
	large := filepath.Join(overlaysDir, "large")
	if errs := runChecks(mustRender(t, large)); len(errs) > 0 {
		t.Fatalf("the unbroken overlay fails: %v", joinErrs(errs))
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := mustRender(t, large)
			tc.mutate(b)
			errs := runChecks(b)
			if len(errs) == 0 {
				t.Fatalf("no check failed; want one saying %q", tc.want)
			}
			if msg := joinErrs(errs); !strings.Contains(msg, tc.want) {
				t.Fatalf("the checks say:\n%s\nwant %q", msg, tc.want)
			}
		})
	}
}
