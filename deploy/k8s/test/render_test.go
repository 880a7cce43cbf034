package k8stest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Paths relative to this package's directory (go test runs in it).
const (
	baseDir     = "../base"
	overlaysDir = "../overlays"
	toolsDir    = "../tools"
	composeFile = "../../compose/docker-compose.yml"
)

// bundle holds the decoded objects of one rendered kustomization.
type bundle struct {
	name            string
	kinds           []string // in render order
	namespaces      []*corev1.Namespace
	configMaps      map[string]*corev1.ConfigMap
	secrets         map[string]*corev1.Secret
	serviceAccounts map[string]*corev1.ServiceAccount
	claims          map[string]*corev1.PersistentVolumeClaim
	services        []*corev1.Service
	statefulSets    []*appsv1.StatefulSet
	deployments     []*appsv1.Deployment
	jobs            []*batchv1.Job
	pods            []*corev1.Pod
	pdbs            []*policyv1.PodDisruptionBudget
}

func newBundle(name string) *bundle {
	return &bundle{
		name: name, configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		serviceAccounts: map[string]*corev1.ServiceAccount{}, claims: map[string]*corev1.PersistentVolumeClaim{},
	}
}

// overlayDirs lists the overlays, sorted.
func overlayDirs() ([]string, error) {
	entries, err := os.ReadDir(overlaysDir)
	if err != nil {
		return nil, fmt.Errorf("list overlays: %w", err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join(overlaysDir, e.Name()))
		}
	}
	sort.Strings(dirs)
	return dirs, nil
}

// render builds the kustomization in dir in-process and decodes every
// resource strictly.
func render(dir string) (*bundle, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	b := newBundle(dir)
	for i, r := range m.Resources() {
		doc, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("%s: resource %d (%s): %w", dir, i, r.CurId(), err)
		}
		if err := b.add(doc); err != nil {
			return nil, fmt.Errorf("%s: resource %d (%s): %w", dir, i, r.CurId(), err)
		}
	}
	return b, nil
}

// decodeFile decodes every document of a plain manifest file strictly.
func decodeFile(path string) (*bundle, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	b := newBundle(path)
	for i, doc := range bytes.Split(data, []byte("\n---")) {
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		if err := b.add(doc); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, i+1, err)
		}
	}
	return b, nil
}

func stripComments(doc []byte) []byte {
	var out [][]byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(out, line)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// add decodes one YAML document into its k8s.io/api type and files it.
func (b *bundle) add(doc []byte) error {
	obj, err := decodeStrict(doc)
	if err != nil {
		return err
	}
	b.kinds = append(b.kinds, fmt.Sprintf("%T", obj))
	switch o := obj.(type) {
	case *corev1.Namespace:
		b.namespaces = append(b.namespaces, o)
	case *corev1.ConfigMap:
		b.configMaps[o.Name] = o
	case *corev1.Secret:
		b.secrets[o.Name] = o
	case *corev1.ServiceAccount:
		b.serviceAccounts[o.Name] = o
	case *corev1.PersistentVolumeClaim:
		b.claims[o.Name] = o
	case *corev1.Service:
		b.services = append(b.services, o)
	case *corev1.Pod:
		b.pods = append(b.pods, o)
	case *appsv1.StatefulSet:
		b.statefulSets = append(b.statefulSets, o)
	case *appsv1.Deployment:
		b.deployments = append(b.deployments, o)
	case *batchv1.Job:
		b.jobs = append(b.jobs, o)
	case *policyv1.PodDisruptionBudget:
		b.pdbs = append(b.pdbs, o)
	default:
		return fmt.Errorf("no check knows the type %T", obj)
	}
	return nil
}

// decodeStrict turns a YAML document into the k8s.io/api type its apiVersion
// and kind name. Duplicate keys and fields the type does not have are errors.
func decodeStrict(doc []byte) (any, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(js, &head); err != nil {
		return nil, fmt.Errorf("read apiVersion and kind: %w", err)
	}
	obj, err := newObject(head.APIVersion, head.Kind)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return nil, fmt.Errorf("%s %s: %w", head.APIVersion, head.Kind, err)
	}
	return obj, nil
}

func newObject(apiVersion, kind string) (any, error) {
	switch apiVersion + "/" + kind {
	case "v1/Namespace":
		return &corev1.Namespace{}, nil
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1/Secret":
		return &corev1.Secret{}, nil
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "v1/PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}, nil
	case "v1/Service":
		return &corev1.Service{}, nil
	case "v1/Pod":
		return &corev1.Pod{}, nil
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, nil
	case "batch/v1/Job":
		return &batchv1.Job{}, nil
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	}
	return nil, fmt.Errorf("unexpected apiVersion %q kind %q (add it to newObject and to the checks)", apiVersion, kind)
}
