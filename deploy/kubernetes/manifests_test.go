package kubernetes

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/aegis-platform/aegis/internal/cli"
)

// kinds are the objects these manifests may hold, each decoded into its
// type of the Kubernetes API. Any other kind, or a version of one that
// Kubernetes removed (policy/v1beta1 PodDisruptionBudget), is an error.
var kinds = map[string]func() any{
	"apps/v1 StatefulSet":                func() any { return new(appsv1.StatefulSet) },
	"v1 Service":                         func() any { return new(corev1.Service) },
	"policy/v1 PodDisruptionBudget":      func() any { return new(policyv1.PodDisruptionBudget) },
	"networking.k8s.io/v1 NetworkPolicy": func() any { return new(networkingv1.NetworkPolicy) },
}

// decode reads one YAML document strictly into the API type its
// apiVersion and kind name: a field the type does not have, a value of
// the wrong type, or a key given twice is an error.
func decode(doc []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	newObj := kinds[tm.APIVersion+" "+tm.Kind]
	if newObj == nil {
		return nil, fmt.Errorf("apiVersion %q kind %q: not a kind these manifests may hold", tm.APIVersion, tm.Kind)
	}
	obj := newObj()
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s %s: %w", tm.APIVersion, tm.Kind, err)
	}
	return obj, nil
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// manifests are the objects of every YAML file here, each document
// decoded strictly.
type manifests struct {
	sts      *appsv1.StatefulSet
	services map[string]*corev1.Service
	pdbs     []*policyv1.PodDisruptionBudget
	policies []*networkingv1.NetworkPolicy
}

func load(t *testing.T) manifests {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	m := manifests{services: map[string]*corev1.Service{}}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range docSeparator.Split(string(b), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			obj, err := decode([]byte(doc))
			if err != nil {
				t.Errorf("%s, document %d: %v", f, i+1, err)
				continue
			}
			switch o := obj.(type) {
			case *appsv1.StatefulSet:
				if m.sts != nil {
					t.Errorf("%s: a second StatefulSet", f)
				}
				m.sts = o
			case *corev1.Service:
				m.services[o.Name] = o
			case *policyv1.PodDisruptionBudget:
				m.pdbs = append(m.pdbs, o)
			case *networkingv1.NetworkPolicy:
				m.policies = append(m.policies, o)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if m.sts == nil {
		t.Fatal("no StatefulSet")
	}
	return m
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// TestStrictDecoding: the decoder the manifests pass refuses what a typo
// makes of them, so their passing means something.
func TestStrictDecoding(t *testing.T) {
	good := "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: a\nspec:\n  maxUnavailable: 1\n"
	if _, err := decode([]byte(good)); err != nil {
		t.Fatalf("a valid PodDisruptionBudget refused: %v", err)
	}
	for name, doc := range map[string]string{
		"unknown field":   strings.Replace(good, "maxUnavailable", "maxUnavailabel", 1),
		"wrong type":      "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: a\nspec:\n  replicas: three\n",
		"duplicate key":   good + "  maxUnavailable: 2\n",
		"removed version": strings.Replace(good, "policy/v1", "policy/v1beta1", 1),
		"unknown kind":    strings.Replace(good, "PodDisruptionBudget", "PodDisruptionBudgets", 1),
		"misplaced field": "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  clusterIP: None\n",
	} {
		if _, err := decode([]byte(doc)); err == nil {
			t.Errorf("%s: decoded without an error", name)
		}
	}
}

// TestManifests checks what the cluster needs of the manifests beyond
// their schema.
func TestManifests(t *testing.T) {
	m := load(t)
	sts := m.sts
	spec := sts.Spec.Template.Spec
	podLabels := labels.Set(sts.Spec.Template.Labels)

	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 3 {
		t.Errorf("replicas %v, want 3", sts.Spec.Replicas)
	}
	if sts.Spec.MinReadySeconds < 10 {
		t.Errorf("minReadySeconds %d: a restarted server needs time to catch up before the next one goes", sts.Spec.MinReadySeconds)
	}
	if u := sts.Spec.UpdateStrategy; u.Type != appsv1.RollingUpdateStatefulSetStrategyType ||
		u.RollingUpdate != nil && u.RollingUpdate.MaxUnavailable != nil && *u.RollingUpdate.MaxUnavailable != intstr.FromInt32(1) {
		t.Errorf("update strategy %+v: want a rolling update, one pod at a time", u)
	}
	if sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("podManagementPolicy %q: the servers must start together to form a quorum", sts.Spec.PodManagementPolicy)
	}
	if !selects(t, sts.Spec.Selector, podLabels) {
		t.Errorf("the StatefulSet's selector does not select its own pods")
	}

	// The headless service names the pods the routes dial.
	headless := m.services[sts.Spec.ServiceName]
	if headless == nil || headless.Spec.ClusterIP != corev1.ClusterIPNone || !headless.Spec.PublishNotReadyAddresses {
		t.Fatalf("serviceName %q: want a headless service publishing pods before they are ready", sts.Spec.ServiceName)
	}

	// Every service reaches the pods, on ports the container has.
	c := container(t, spec.Containers, "aegis")
	for name, svc := range m.services {
		if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) || len(svc.Spec.Selector) == 0 {
			t.Errorf("service %s does not select the pods", name)
		}
		for _, p := range svc.Spec.Ports {
			if containerPort(c, p.TargetPort) == 0 {
				t.Errorf("service %s: target port %s is not a port of the container", name, p.TargetPort.String())
			}
		}
	}
	gateway := 0
	for _, svc := range m.services {
		if svc.Spec.ClusterIP != corev1.ClusterIPNone && slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool {
			return p.TargetPort == intstr.FromString("http")
		}) {
			gateway++
		}
	}
	if gateway != 1 {
		t.Errorf("%d services for the gateway, want 1", gateway)
	}

	// One PodDisruptionBudget, one server at a time, selecting the pods.
	if len(m.pdbs) != 1 {
		t.Fatalf("%d PodDisruptionBudgets, want 1", len(m.pdbs))
	}
	pdb := m.pdbs[0]
	if pdb.Spec.MaxUnavailable == nil || *pdb.Spec.MaxUnavailable != intstr.FromInt32(1) || pdb.Spec.MinAvailable != nil {
		t.Errorf("PodDisruptionBudget: maxUnavailable %v, minAvailable %v; want maxUnavailable 1 alone", pdb.Spec.MaxUnavailable, pdb.Spec.MinAvailable)
	}
	if !selects(t, pdb.Spec.Selector, podLabels) {
		t.Errorf("the PodDisruptionBudget's selector %v does not select the pods %v", pdb.Spec.Selector, podLabels)
	}

	// The network policies let the route port in only from the servers.
	for _, np := range m.policies {
		if !selects(t, &np.Spec.PodSelector, podLabels) {
			t.Errorf("network policy %s does not apply to the pods", np.Name)
		}
		for _, rule := range np.Spec.Ingress {
			for _, p := range rule.Ports {
				if p.Port != nil && containerPort(c, *p.Port) == containerPort(c, intstr.FromString("cluster")) &&
					(len(rule.From) == 0 || !slices.ContainsFunc(rule.From, func(f networkingv1.NetworkPolicyPeer) bool {
						return f.PodSelector != nil && selects(t, f.PodSelector, podLabels)
					})) {
					t.Errorf("network policy %s lets others than the servers reach the route port", np.Name)
				}
			}
		}
	}

	flags := serverFlags(t, c)
	checkArgsParse(t, c)
	checkProbes(t, c, flags)
	checkCluster(t, sts, headless, c, flags)
	checkStorage(t, sts, c, flags)
	checkJoinSecret(t, spec, c, flags)
	checkHardening(t, spec)
}

// serverFlags are the container's --flag=value arguments after "server",
// with $(POD_NAME) as Kubernetes expands it for the first pod.
func serverFlags(t *testing.T, c *corev1.Container) map[string]string {
	t.Helper()
	if len(c.Command) != 0 || len(c.Args) == 0 || c.Args[0] != "server" {
		t.Fatalf("the container runs %v %v; want the image's aegis with args \"server\", …", c.Command, c.Args)
	}
	flags := map[string]string{}
	for _, a := range c.Args[1:] {
		name, value, ok := strings.Cut(a, "=")
		if !ok || !strings.HasPrefix(name, "--") {
			t.Fatalf("argument %q: write every flag as --name=value", a)
		}
		if _, dup := flags[name]; dup {
			t.Errorf("flag %s given twice", name)
		}
		flags[name] = value
	}
	return flags
}

// expand is the container's args as Kubernetes passes them to the first
// pod: $(VAR) replaced from the container's env.
func expand(t *testing.T, c *corev1.Container, pod string) []string {
	t.Helper()
	out := make([]string, len(c.Args))
	for i, a := range c.Args {
		for _, e := range c.Env {
			v := e.Value
			if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name" {
				v = pod
			}
			a = strings.ReplaceAll(a, "$("+e.Name+")", v)
		}
		if strings.Contains(a, "$(") {
			t.Errorf("argument %q names a variable the container's env does not set", c.Args[i])
		}
		out[i] = a
	}
	return out
}

// checkArgsParse runs the container's command line through the real
// `aegis` command line, with --help so that nothing starts: an unknown
// flag or a value of the wrong type fails the way it would in the pod.
func checkArgsParse(t *testing.T, c *corev1.Container) {
	t.Helper()
	parse := func(args []string) (int, string) {
		var out, errb bytes.Buffer
		code := cli.Run(context.Background(), append(slices.Clone(args), "--help"), strings.NewReader(""), &out, &errb,
			func(string) string { return "" })
		return code, errb.String()
	}
	args := expand(t, c, "aegis-0")
	if code, stderr := parse(args); code != 0 {
		t.Errorf("aegis %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
	}
	// The check itself can fail.
	if code, _ := parse(append(args, "--no-such-flag=1")); code == 0 {
		t.Error("an unknown flag parsed: the args check proves nothing")
	}
	if code, _ := parse(append(args[:1:1], "--drain-timeout=soon")); code == 0 {
		t.Error("a malformed duration parsed: the args check proves nothing")
	}
}

// checkProbes: startup and liveness ask the admin listener's /v1/health,
// readiness its /v1/ready, on the port --admin listens on.
func checkProbes(t *testing.T, c *corev1.Container, flags map[string]string) {
	t.Helper()
	_, adminPort, err := net.SplitHostPort(flags["--admin"])
	if err != nil {
		t.Fatalf("--admin %q: %v", flags["--admin"], err)
	}
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s probe: want an HTTP GET", name)
			continue
		}
		want := "/v1/health"
		if name == "readiness" {
			want = "/v1/ready"
		}
		if p.HTTPGet.Path != want {
			t.Errorf("%s probe path %q, want %s", name, p.HTTPGet.Path, want)
		}
		if strconv.Itoa(int(containerPort(c, p.HTTPGet.Port))) != adminPort {
			t.Errorf("%s probe port %s is not the admin listener's %s", name, p.HTTPGet.Port.String(), adminPort)
		}
	}
	for flag, port := range map[string]string{"--http": "http", "--admin": "admin", "--cluster-listen": "cluster"} {
		host, p, err := net.SplitHostPort(flags[flag])
		if err != nil || host != "0.0.0.0" || p != strconv.Itoa(int(containerPort(c, intstr.FromString(port)))) {
			t.Errorf("%s=%s: want 0.0.0.0 and the container port named %s", flag, flags[flag], port)
		}
	}
}

// checkCluster: the peers are every pod of the StatefulSet by its name in
// the headless service, on the route port; each pod is named by the pod's
// own name.
func checkCluster(t *testing.T, sts *appsv1.StatefulSet, headless *corev1.Service, c *corev1.Container, flags map[string]string) {
	t.Helper()
	route := containerPort(c, intstr.FromString("cluster"))
	var want []string
	for i := range int(*sts.Spec.Replicas) {
		want = append(want, fmt.Sprintf("nats-route://%s-%d.%s:%d", sts.Name, i, headless.Name, route))
	}
	if got := flags["--cluster-peers"]; got != strings.Join(want, ",") {
		t.Errorf("--cluster-peers=%s, want %s", got, strings.Join(want, ","))
	}
	if !slices.ContainsFunc(headless.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == route }) {
		t.Errorf("the headless service has no port %d for the routes", route)
	}
	if flags["--cluster-name"] == "" || flags["--replicas"] != "3" {
		t.Errorf("--cluster-name=%q --replicas=%q: want a name and 3 replicas", flags["--cluster-name"], flags["--replicas"])
	}
	if flags["--node-name"] != "$(POD_NAME)" || !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == "POD_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name"
	}) {
		t.Errorf("--node-name=%s: want $(POD_NAME), the pod's name from the downward API", flags["--node-name"])
	}
}

// checkStorage: --data is the volume claim template's mount.
func checkStorage(t *testing.T, sts *appsv1.StatefulSet, c *corev1.Container, flags map[string]string) {
	t.Helper()
	if len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("%d volume claim templates, want 1", len(sts.Spec.VolumeClaimTemplates))
	}
	claim := sts.Spec.VolumeClaimTemplates[0]
	if claim.Spec.Resources.Requests.Storage().IsZero() {
		t.Errorf("the data claim requests no storage")
	}
	if mountOf(c, claim.Name) != flags["--data"] || flags["--data"] == "" {
		t.Errorf("--data=%s is not where the claim %s is mounted (%s)", flags["--data"], claim.Name, mountOf(c, claim.Name))
	}
}

// checkJoinSecret: the join secret is mounted in the init container that
// copies the file, 0600, to the path --cluster-join names, on a volume the
// server mounts.
func checkJoinSecret(t *testing.T, spec corev1.PodSpec, c *corev1.Container, flags map[string]string) {
	t.Helper()
	var secretVol string
	for _, v := range spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == "aegis-join" {
			secretVol = v.Name
			if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode != 0o400 {
				t.Errorf("the join secret's mode %v, want 0400", v.Secret.DefaultMode)
			}
		}
	}
	if secretVol == "" {
		t.Fatal("no volume of the secret aegis-join")
	}
	init := container(t, spec.InitContainers, "join")
	from, to := mountOf(init, secretVol)+"/cluster.join", flags["--cluster-join"]
	if want := []string{"install", "-m", "0600", from, to}; !slices.Equal(init.Command, want) {
		t.Errorf("the join init container runs %v, want %v", init.Command, want)
	}
	dir := filepath.Dir(to)
	vol := ""
	for _, m := range c.VolumeMounts {
		if m.MountPath == dir {
			vol = m.Name
			if !m.ReadOnly {
				t.Errorf("the server mounts the join file's volume writable")
			}
		}
	}
	if vol == "" || mountOf(init, vol) != dir {
		t.Errorf("--cluster-join=%s: not on a volume both the init container and the server mount", to)
	}
}

// checkHardening: every container runs as a non-root user on a read-only
// root file system, with no capability and no privilege escalation, under
// the runtime's seccomp profile, and within resource limits.
func checkHardening(t *testing.T, spec corev1.PodSpec) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context %+v: want runAsNonRoot, a non-zero runAsUser and seccomp RuntimeDefault", psc)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("the pods mount a service account token they never use")
	}
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		sc := c.SecurityContext
		if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Privileged != nil && *sc.Privileged ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
			t.Errorf("container %s: security context %+v", c.Name, sc)
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
			if req.IsZero() || lim.IsZero() || req.Cmp(lim) > 0 {
				t.Errorf("container %s: %s request %s, limit %s", c.Name, r, req.String(), lim.String())
			}
		}
		if c.Image == "" || strings.HasSuffix(c.Image, ":latest") || !strings.Contains(c.Image, ":") {
			t.Errorf("container %s: image %q, want a pinned tag", c.Name, c.Image)
		}
	}
}

func selects(t *testing.T, sel *metav1.LabelSelector, set labels.Set) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Errorf("selector %v: %v", sel, err)
		return false
	}
	return !s.Empty() && s.Matches(set)
}

func container(t *testing.T, cs []corev1.Container, name string) *corev1.Container {
	t.Helper()
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	t.Fatalf("no container %s", name)
	return nil
}

// containerPort resolves p (a number or a port name) against c's ports;
// 0 when c has no such port.
func containerPort(c *corev1.Container, p intstr.IntOrString) int32 {
	for _, cp := range c.Ports {
		if p.Type == intstr.String && cp.Name == p.StrVal || p.Type == intstr.Int && cp.ContainerPort == p.IntVal {
			return cp.ContainerPort
		}
	}
	return 0
}

func mountOf(c *corev1.Container, volume string) string {
	for _, m := range c.VolumeMounts {
		if m.Name == volume {
			return m.MountPath
		}
	}
	return ""
}
