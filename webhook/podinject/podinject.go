// Package podinject decides what backup sidecar, volumes and annotation a pod gains, from its annotations and a
// profile of the configuration. It is plain Go on typed objects: the webhook and the offline `tandem inject`
// both call it, and its only output is a Plan and the JSON patch that carries it out.
package podinject

import (
	"fmt"
	"github.com/tandem-dev/tandem/internal/contract"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/tandem-dev/tandem/webhook/annotations"
	"github.com/tandem-dev/tandem/webhook/config"
)

// Refusal is a problem with the user's pod. The webhook denies the pod with its message, which says what to
// change.
type Refusal struct {
	Problems []string
}

func (r *Refusal) Error() string {
	return "tandem cannot inject the backup sidecar: " + strings.Join(r.Problems, "; ")
}

// Outcome is what tandem did with a pod.
type Outcome string

// Outcomes, as counted in tandem's metrics.
const (
	// Injected: the pod gains the sidecar (or, where an identical one was already there, only the annotation).
	Injected Outcome = "injected"
	// Skipped: the pod did not opt in, opted out, or was injected already.
	Skipped Outcome = "skipped"
	// Refused: the pod opted in but cannot be injected as written.
	Refused Outcome = "refused"
)

// Plan is what one pod gains. The zero Plan adds nothing.
type Plan struct {
	Outcome Outcome
	// Profile is the profile selected, when the pod opted in.
	Profile string
	// Warnings are facts the user should know that do not stop the pod.
	Warnings []string
	// Container is the sidecar to add; nil when nothing is added or an identical one is already there.
	Container *corev1.Container
	// Native puts Container in initContainers, as a native sidecar.
	Native bool
	// Volumes are the volumes to add; ones the pod already has, identical, are not repeated.
	Volumes []corev1.Volume
}

// Injector plans injections with one configuration.
type Injector struct {
	cfg *config.Config
}

// New returns an Injector for cfg.
func New(cfg *config.Config) *Injector {
	return &Injector{cfg: cfg}
}

// Plan decides what the pod with this metadata and spec gains. A *Refusal error means the pod must not be
// admitted as it is. The pod is not modified.
func (in *Injector) Plan(meta *metav1.ObjectMeta, spec *corev1.PodSpec) (*Plan, error) {
	ann := meta.Annotations
	plan, value, optedIn := gate(ann)
	if !optedIn {
		return plan, nil
	}
	profile, name, profileProblems := in.resolveProfile(value)
	done, warning := alreadyInjected(ann, spec, profile)
	if done {
		plan.Profile = ann[annotations.Injected]
		return plan, nil
	}
	if warning != "" {
		plan.Warnings = append(plan.Warnings, warning)
	}
	// Every problem is reported at once, so that the user fixes the pod in one go.
	problems := append(checkAnnotations(ann), profileProblems...)
	if profile == nil {
		return nil, &Refusal{Problems: problems}
	}
	plan.Profile = name
	s := buildSidecar(profile, name, ann, spec)
	plan.Warnings = append(plan.Warnings, s.warnings...)
	plan.Native = profile.Native()
	problems = appendNew(problems, s.problems...)
	plan.Container, problems = placeContainer(spec, s.container, profile.Native(), name, problems)
	plan.Volumes, problems = placeVolumes(spec, s.volumes, problems)
	if len(problems) > 0 {
		return nil, &Refusal{Problems: problems}
	}
	plan.Outcome = Injected
	return plan, nil
}

// ImageUser is the UID of tandem's backup image (its USER), which a sidecar that must run as non-root gets in a
// pod that runs as root.
const ImageUser int64 = 65532

// nonRootIn returns the sidecar's security context for a pod with this spec: the profile's, except that a
// sidecar that must run as non-root (runAsNonRoot) but names no user of its own, in a pod whose securityContext
// runs as root, gets ImageUser. Otherwise it would inherit UID 0 and the kubelet would refuse to start it. No UID
// is pinned anywhere else, so a platform that assigns UIDs (OpenShift) assigns the sidecar's too.
func nonRootIn(spec *corev1.PodSpec, sc *corev1.SecurityContext) *corev1.SecurityContext {
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser != nil {
		return sc
	}
	if spec.SecurityContext == nil || spec.SecurityContext.RunAsUser == nil || *spec.SecurityContext.RunAsUser != 0 {
		return sc
	}
	sc = sc.DeepCopy()
	sc.RunAsUser = ptr.To(ImageUser)
	return sc
}

// appendNew appends the problems not in list yet: a bad annotation found by its own check and again while the
// sidecar is built is reported once.
func appendNew(list []string, problems ...string) []string {
	for _, p := range problems {
		if !slices.Contains(list, p) {
			list = append(list, p)
		}
	}
	return list
}

// gate decides whether a pod with these annotations is to be injected at all: it returns the Plan of a pod that
// is not (skipped, with its warnings) and, for one that is, the value of tandem.dev/backup.
func gate(ann map[string]string) (plan *Plan, value string, optedIn bool) {
	plan = &Plan{Outcome: Skipped, Warnings: unknownKeys(ann)}
	value, optedIn = ann[annotations.Backup]
	switch {
	case !optedIn:
		if key := firstInjectionKey(ann); key != "" {
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("%s is set but %s is not: no backup sidecar was injected", key, annotations.Backup))
		}
		return plan, "", false
	case value == "false":
		return plan, "", false
	}
	return plan, value, true
}

// alreadyInjected reports whether tandem injected this pod before: it carries tandem.dev/injected and the
// sidecar's container (a second call of the webhook, or tandem inject's own output). A pod that carries the
// annotation without the container (copied from another manifest) was not: it gets a warning and the sidecar.
func alreadyInjected(ann map[string]string, spec *corev1.PodSpec, profile *config.Profile) (done bool, warning string) {
	value, ok := ann[annotations.Injected]
	if !ok {
		return false, ""
	}
	name := config.DefaultContainerName
	if profile != nil {
		name = profile.ContainerName
	}
	for _, list := range [][]corev1.Container{spec.Containers, spec.InitContainers} {
		for _, c := range list {
			if c.Name == name {
				return true, ""
			}
		}
	}
	return false, fmt.Sprintf("%s: %s is set, but the pod has no %s container (was the annotation copied from another pod?): "+
		"tandem injects the backup sidecar", annotations.Injected, value, name)
}

// checkAnnotations runs the check of every annotation the pod carries, and returns a problem for each bad value.
func checkAnnotations(ann map[string]string) []string {
	var problems []string
	for _, a := range annotations.All {
		if v, ok := ann[a.Key]; ok && a.Validate != nil {
			if err := a.Validate(v); err != nil {
				problems = append(problems, fmt.Sprintf("annotation %s: %v", a.Key, err))
			}
		}
	}
	return problems
}

// resolveProfile returns the profile tandem.dev/backup's value selects and its name, or the problem.
func (in *Injector) resolveProfile(value string) (*config.Profile, string, []string) {
	profile, name, ok := in.cfg.Profile(value)
	switch {
	case ok:
		return profile, name, nil
	case value == annotations.True:
		return nil, "", []string{fmt.Sprintf(`annotation %s: "true" selects the default profile, but the configuration names none: set it to one of %s`,
			annotations.Backup, strings.Join(in.cfg.ProfileNames(), ", "))}
	default:
		return nil, "", []string{fmt.Sprintf(`annotation %s: unknown profile %q: set it to one of %s, or "true" for the default profile`,
			annotations.Backup, value, strings.Join(in.cfg.ProfileNames(), ", "))}
	}
}

// sidecar is the container and volumes a profile gives a pod, before they are placed in its spec.
type sidecar struct {
	container *corev1.Container
	volumes   []corev1.Volume
	warnings  []string
	problems  []string
}

// buildSidecar makes the sidecar of profile (named name) for a pod with these annotations and spec: its
// container with tandem's environment and mounts, the backup volume, the database secret's volume, and the
// profile's own volumes.
func buildSidecar(profile *config.Profile, name string, ann map[string]string, spec *corev1.PodSpec) sidecar {
	var s sidecar
	location := valueOr(ann, annotations.BackupLocation, profile.BackupLocation)
	if location == "" {
		s.problems = append(s.problems, fmt.Sprintf("annotation %s is required: profile %s has no default location; add for example %s: s3://my-bucket/my-backups",
			annotations.BackupLocation, name, annotations.BackupLocation))
	}
	interval, err := annotations.ParseInterval(valueOr(ann, annotations.BackupInterval, profile.Interval))
	if err != nil { // the profile's own interval was checked with the configuration, so this is the annotation's
		s.problems = append(s.problems, fmt.Sprintf("annotation %s: %v", annotations.BackupInterval, err))
	}

	resources, problem := sidecarResources(profile, name, spec)
	if problem != "" {
		s.problems = append(s.problems, problem)
	}

	port := metricsPort(profile, ann)
	_, portChosen := ann[annotations.MetricsPort]
	s.warnings, s.problems = checkMetricsPort(spec, profile.ContainerName, port, portChosen, s.warnings, s.problems)

	// Room for the secret's mount and volume too, appended below.
	mounts := append(make([]corev1.VolumeMount, 0, 2+len(profile.VolumeMounts)),
		corev1.VolumeMount{Name: contract.BackupVolume, MountPath: contract.BackupMountPath})
	s.volumes = append(make([]corev1.Volume, 0, 2+len(profile.Volumes)),
		corev1.Volume{Name: contract.BackupVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: dataSizeLimit(profile)}}})
	c := &corev1.Container{
		Name:            profile.ContainerName,
		Image:           profile.Image,
		ImagePullPolicy: profile.ImagePullPolicy,
		Command:         profile.Command,
		Args:            profile.Args,
		Env:             sidecarEnv(profile, ann, location, interval.Seconds(), port),
		Resources:       resources,
		SecurityContext: nonRootIn(spec, profile.SecurityContext),
		VolumeMounts:    append(mounts, profile.VolumeMounts...),
	}
	if port > 0 {
		c.Ports = []corev1.ContainerPort{{Name: contract.MetricsPortName, ContainerPort: port, Protocol: corev1.ProtocolTCP}}
	}
	if creds := ann[annotations.BackupCredentials]; creds != "" {
		c.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: creds}}}}
	}
	if secret := ann[annotations.DatabaseSecret]; secret != "" {
		// Only the key the sidecar reads, not every password the Secret may hold; optional, so that a Secret or a
		// key that is missing keeps only the sidecar from logging in, never the database's pod from starting.
		key := valueOr(ann, annotations.DatabaseSecretKey, annotations.DefaultDatabaseSecretKey)
		v := corev1.Volume{Name: contract.SecretVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: secret, Items: []corev1.KeyToPath{{Key: key, Path: key}}, Optional: ptr.To(true)}}}
		s.volumes = append(s.volumes, v)
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: v.Name, MountPath: contract.SecretMountPath, ReadOnly: true})
	} else {
		s.warnings = append(s.warnings, fmt.Sprintf("%s is not set: the backup sidecar connects to the database without a password", annotations.DatabaseSecret))
	}
	s.volumes = append(s.volumes, profile.Volumes...)
	if profile.Native() {
		always := corev1.ContainerRestartPolicyAlways
		c.RestartPolicy = &always
	} else if spec.RestartPolicy == corev1.RestartPolicyNever || spec.RestartPolicy == corev1.RestartPolicyOnFailure {
		s.warnings = append(s.warnings, fmt.Sprintf("the pod's restartPolicy is %s, but profile %s injects a regular container, "+
			"which keeps the pod from ever completing: use a profile without nativeSidecar: false", spec.RestartPolicy, name))
	}
	s.problems = append(s.problems, engineProblems(profile, name, c.Env, ann)...)
	s.warnings = append(s.warnings, checkDatabasePort(spec, profile.ContainerName, c.Env)...)
	s.container = c
	return s
}

// dataSizeLimit is the sizeLimit of the backup-data volume: the profile's, nil for none (or 0).
func dataSizeLimit(p *config.Profile) *resource.Quantity {
	if p.DataSizeLimit == nil || p.DataSizeLimit.IsZero() {
		return nil
	}
	return p.DataSizeLimit
}

func sidecarEnv(p *config.Profile, ann map[string]string, location string, seconds float64, port int32) []corev1.EnvVar {
	env := make([]corev1.EnvVar, 0, len(p.Env)+6)
	env = append(env,
		corev1.EnvVar{Name: contract.EnvLocation, Value: location},
		corev1.EnvVar{Name: contract.EnvInterval, Value: valueOr(ann, annotations.BackupInterval, p.Interval)},
		corev1.EnvVar{Name: contract.EnvIntervalSeconds, Value: strconv.FormatInt(int64(seconds), 10)},
	)
	if db := valueOr(ann, annotations.Database, p.Database); db != "" {
		env = append(env, corev1.EnvVar{Name: contract.EnvDatabaseName, Value: db})
	}
	user, userSet := ann[annotations.DatabaseUser]
	if userSet {
		env = append(env, corev1.EnvVar{Name: contract.EnvDatabaseUser, Value: user})
	}
	if secret := ann[annotations.DatabaseSecret]; secret != "" {
		key := valueOr(ann, annotations.DatabaseSecretKey, annotations.DefaultDatabaseSecretKey)
		env = append(env, corev1.EnvVar{Name: contract.EnvDatabasePassword, ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key, Optional: ptr.To(true)},
		}})
	}
	if port > 0 {
		env = append(env, corev1.EnvVar{Name: contract.EnvMetricsBindAddress, Value: contract.MetricsBindAddress(port)})
	}
	if limit := dataSizeLimit(p); limit != nil {
		env = append(env, corev1.EnvVar{Name: contract.EnvDirSizeLimit, Value: limit.String()})
	}
	// Which pod took each backup, and which member of a StatefulSet this is, from the Downward API.
	env = append(env, corev1.EnvVar{Name: contract.EnvPodName, ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}})
	if members, ok := ann[annotations.BackupMembers]; ok {
		env = append(env,
			corev1.EnvVar{Name: contract.EnvMembers, Value: members},
			corev1.EnvVar{Name: contract.EnvPodIndex, ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.labels['" + contract.PodIndexLabel + "']"}}})
	}
	// The pod's annotations replace the profile's values of the same variables.
	fromPod := map[string]bool{}
	if userSet {
		fromPod[contract.EnvDatabaseUser] = true
	}
	for _, a := range []struct{ key, env string }{{annotations.DatabasePort, contract.EnvDatabasePort},
		{annotations.Verify, contract.EnvVerify}, {annotations.VerifyQueries, contract.EnvVerifyQueries}} {
		if v, ok := ann[a.key]; ok {
			env = append(env, corev1.EnvVar{Name: a.env, Value: v})
			fromPod[a.env] = true
		}
	}
	for _, e := range p.Env {
		if !fromPod[e.Name] {
			env = append(env, e)
		}
	}
	return env
}

// metricsPort is the sidecar's metrics port: tandem.dev/metrics-port, else the profile's; 0 for none. An
// unparsable annotation was reported by its own check.
func metricsPort(profile *config.Profile, ann map[string]string) int32 {
	v, ok := ann[annotations.MetricsPort]
	if !ok {
		return profile.MetricsPort
	}
	port, _ := annotations.ParsePort(v) // 0, no port, when the value was bad
	return port
}

// checkMetricsPort refuses a metrics port one of the pod's containers declares already (the sidecar could never
// serve its metrics), and warns of the profile's in a host-network pod, where it is a port of the node (chosen
// says the pod chose its own). The container named sidecar is the sidecar itself, or a clash placeContainer
// reports.
func checkMetricsPort(spec *corev1.PodSpec, sidecar string, port int32, chosen bool, warnings, problems []string) ([]string, []string) {
	if port == 0 {
		return warnings, problems
	}
	for _, list := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, c := range list {
			if c.Name == sidecar {
				continue
			}
			for _, p := range c.Ports {
				if p.ContainerPort == port && (p.Protocol == "" || p.Protocol == corev1.ProtocolTCP) {
					problems = append(problems, fmt.Sprintf("container %q already uses port %d, the backup sidecar's metrics port: "+
						"set %s to a free port, or \"0\" to serve no metrics", c.Name, port, annotations.MetricsPort))
				}
			}
		}
	}
	if spec.HostNetwork && !chosen {
		warnings = append(warnings, fmt.Sprintf("the pod uses the node's network, so the backup sidecar's metrics port %d is a port of the node: "+
			"the scheduler keeps a second such pod off the node, as it does for any host port; set %s to a port of its own per pod, or \"0\"",
			port, annotations.MetricsPort))
	}
	return warnings, problems
}

// checkDatabasePort warns when a host-network pod's containers declare ports and none of them is the one the
// sidecar connects to on localhost: the database most likely listens on a port of its own, and on the node's
// network the sidecar would back up whatever answers on that port, another replica's database included. (In a
// pod of its own network, a wrong port fails every dump, loudly.)
func checkDatabasePort(spec *corev1.PodSpec, sidecar string, env []corev1.EnvVar) []string {
	if !spec.HostNetwork {
		return nil
	}
	var host, port string
	for _, e := range env {
		switch {
		case e.Name == contract.EnvDatabaseHost && host == "":
			host = e.Value
		case e.Name == contract.EnvDatabasePort && port == "":
			port = e.Value
		}
	}
	want, err := strconv.ParseInt(port, 10, 32)
	if err != nil || (host != "localhost" && host != "127.0.0.1" && host != "::1") {
		return nil
	}
	var declared []string
	for _, list := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, c := range list {
			if c.Name == sidecar {
				continue
			}
			for _, p := range c.Ports {
				if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
					continue
				}
				if int64(p.ContainerPort) == want {
					return nil
				}
				declared = append(declared, strconv.Itoa(int(p.ContainerPort)))
			}
		}
	}
	if len(declared) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("the pod uses the node's network, and the backup sidecar connects to the database on the node's port %d (%s), which no container of the pod declares (it declares %s): "+
		"it would back up whatever database listens there; if this pod's database listens on another port, set %s", want, contract.EnvDatabasePort, strings.Join(declared, ", "), annotations.DatabasePort)}
}

// engineProblems are the combinations of profile and annotations the sidecar (tandem backup, BACKUP_ENGINE in
// the profile's env) could not start with, by the contract's rules; a profile that runs something else has none.
func engineProblems(profile *config.Profile, name string, env []corev1.EnvVar, ann map[string]string) []string {
	value := func(n string) string {
		for _, e := range slices.Backward(env) { // the last of a name is the one the container gets
			if e.Name == n {
				return e.Value
			}
		}
		return ""
	}
	engine := value(contract.EnvEngine)
	var problems []string
	if contract.NeedsDatabase(engine) && value(contract.EnvDatabaseName) == "" {
		problems = append(problems, fmt.Sprintf("profile %s dumps one %s database and names none: add %s: <the database to back up>",
			name, engine, annotations.Database))
	}
	if contract.NeedsUserForPassword(engine) && ann[annotations.DatabaseSecret] != "" && value(contract.EnvDatabaseUser) == "" {
		problems = append(problems, fmt.Sprintf("profile %s logs in to %s with the password of %s, which needs the user it belongs to: add %s: <that user>",
			name, engine, annotations.DatabaseSecret, annotations.DatabaseUser))
	}
	return problems
}

// placeContainer returns the sidecar to add, or nil when the pod already has an identical one in the same list.
// A different container of the same name is a problem: tandem never overwrites a user's container.
func placeContainer(spec *corev1.PodSpec, c *corev1.Container, native bool, profile string, problems []string) (*corev1.Container, []string) {
	lists := []struct {
		name       string
		containers []corev1.Container
		ours       bool
	}{
		{"containers", spec.Containers, !native},
		{"initContainers", spec.InitContainers, native},
	}
	for _, l := range lists {
		for i := range l.containers {
			theirs := &l.containers[i]
			if theirs.Name != c.Name {
				continue
			}
			if !l.ours {
				return nil, append(problems, fmt.Sprintf("the pod already has a container named %q in %s, where profile %s puts none: "+
					"rename that container, or set containerName in the profile", c.Name, l.name, profile))
			}
			if d := difference(c, theirs); d != "" {
				return nil, append(problems, fmt.Sprintf("the pod already has a container named %q that is not the sidecar of profile %s (first difference: %s): "+
					"rename that container, or remove it and let tandem add its own", c.Name, profile, d))
			}
			return nil, problems // identical: reuse it
		}
	}
	return c, problems
}

// placeVolumes returns the volumes to add, leaving out those the pod already has, identical.
func placeVolumes(spec *corev1.PodSpec, volumes []corev1.Volume, problems []string) ([]corev1.Volume, []string) {
	add := make([]corev1.Volume, 0, len(volumes))
	for i := range volumes {
		ours := &volumes[i]
		j := indexVolume(spec.Volumes, ours.Name)
		if j < 0 {
			add = append(add, *ours)
			continue
		}
		if d := difference(ours, &spec.Volumes[j]); d != "" {
			problems = append(problems, fmt.Sprintf("the pod already has a volume named %q that is not the one tandem adds (first difference: %s): "+
				"rename the pod's volume, or remove it and let tandem add its own", ours.Name, d))
		}
	}
	return add, problems
}

func indexVolume(vs []corev1.Volume, name string) int {
	for i := range vs {
		if vs[i].Name == name {
			return i
		}
	}
	return -1
}

func valueOr(ann map[string]string, key, fallback string) string {
	if v, ok := ann[key]; ok {
		return v
	}
	return fallback
}

// injectionKeys are the annotations that mean something only beside tandem.dev/backup.
var injectionKeys = []string{annotations.BackupLocation, annotations.DatabaseSecret, annotations.DatabaseSecretKey,
	annotations.BackupInterval, annotations.Database, annotations.DatabaseUser, annotations.DatabasePort, annotations.MetricsPort, annotations.BackupMembers, annotations.Verify, annotations.VerifyQueries, annotations.BackupCredentials}

func firstInjectionKey(ann map[string]string) string {
	for _, k := range injectionKeys {
		if _, ok := ann[k]; ok {
			return k
		}
	}
	return ""
}

// unknownKeys warns of tandem.dev/ annotations tandem does not read, which are most often typos.
func unknownKeys(ann map[string]string) []string {
	var unknown []string
	for k := range ann {
		if strings.HasPrefix(k, annotations.Prefix) && !annotations.Known(k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	known := make([]string, 0, len(annotations.All))
	for _, a := range annotations.All {
		if !a.SetByTandem {
			known = append(known, a.Key)
		}
	}
	warnings := make([]string, len(unknown))
	for i, k := range unknown {
		warnings[i] = fmt.Sprintf("unknown annotation %s is ignored; tandem reads %s", k, strings.Join(known, ", "))
	}
	return warnings
}
