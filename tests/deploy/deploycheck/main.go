// SPDX-License-Identifier: Apache-2.0

// Command deploycheck checks mqtt2pg's deployment files without a cluster, a Docker engine or helm. It is
// run by tests/deploy/helm_check.sh, prints one "ok: ..." or "FAIL: ..." line per check and exits 1 if any
// check failed.
//
//	deploycheck chart CHART_DIR                        values.yaml documented and typed, README, ci files
//	deploycheck manifests [flags] RENDERED.yaml        Kubernetes objects from helmrender
//	deploycheck compose COMPOSE.yml                    docker-compose.yml and the files it mounts
//	deploycheck dockerfile [flags] Dockerfile          stages, packages, user, entrypoint
//
// YAML is read with gopkg.in/yaml.v3, which (unlike a lenient parser) refuses duplicate keys: a template
// that emits a key twice gets a different object from each Kubernetes client.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

type report struct {
	label          string
	passed, failed int
}

// check prints one result line; why is only printed for a failure.
func (r *report) check(ok bool, what string, why string, args ...interface{}) bool {
	prefix := what
	if r.label != "" {
		prefix = r.label + ": " + what
	}
	if ok {
		r.passed++
		fmt.Printf("ok: %s\n", prefix)
	} else {
		r.failed++
		fmt.Printf("FAIL: %s: %s\n", prefix, fmt.Sprintf(why, args...))
	}
	return ok
}

func (r *report) exit() {
	if r.failed > 0 {
		os.Exit(1)
	}
	os.Exit(0)
}

type obj = map[string]interface{}

// get walks maps by key and lists by decimal index; nil when anything is missing.
func get(v interface{}, keys ...string) interface{} {
	for _, k := range keys {
		switch t := v.(type) {
		case obj:
			v = t[k]
		case []interface{}:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(t) {
				return nil
			}
			v = t[i]
		default:
			return nil
		}
	}
	return v
}

func str(v interface{}, keys ...string) string {
	s, _ := get(v, keys...).(string)
	return s
}

func list(v interface{}, keys ...string) []interface{} {
	l, _ := get(v, keys...).([]interface{})
	return l
}

func stringMap(v interface{}) map[string]string {
	out := map[string]string{}
	if m, ok := v.(obj); ok {
		for k, x := range m {
			if s, ok := x.(string); ok {
				out[k] = s
			} else {
				out[k] = fmt.Sprint(x)
			}
		}
	}
	return out
}

func asInt(v interface{}) (int, bool) {
	switch t := v.(type) {
	case int:
		return t, true
	case int64:
		return int(t), true
	case float64:
		if t == float64(int(t)) {
			return int(t), true
		}
	}
	return 0, false
}

// subset: every key of sel has the same value in labels.
func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

var (
	dns1123Subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	dns1035Label     = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)
	labelValue       = regexp.MustCompile(`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`)
	sha256Hex        = regexp.MustCompile(`^[0-9a-f]{64}$`)
	envRef           = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
)

// ---------------------------------------------------------------------------------------------------
// manifests

type document struct {
	source string
	o      obj
}

func (d document) kind() string { return str(d.o, "kind") }
func (d document) name() string { return str(d.o, "metadata", "name") }
func (d document) id() string   { return d.kind() + "/" + d.name() }
func (d document) hook() string { return str(d.o, "metadata", "annotations", "helm.sh/hook") }
func (d document) weight() int {
	w, _ := strconv.Atoi(str(d.o, "metadata", "annotations", "helm.sh/hook-weight"))
	return w
}

// readDocuments splits helmrender's output and parses every document strictly.
func readDocuments(r *report, data []byte) []document {
	var docs []document
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var errs []string
	for {
		var o obj
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, err.Error())
			break
		}
		if o == nil {
			continue
		}
		docs = append(docs, document{o: o})
	}
	// The "# Source:" comment of each document, in order.
	i := 0
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "# Source: ") && i < len(docs) {
			docs[i].source = strings.TrimPrefix(line, "# Source: ")
			i++
		}
	}
	r.check(len(errs) == 0 && len(docs) > 0, fmt.Sprintf("%d documents parse as YAML (no duplicate keys)", len(docs)),
		"%s", strings.Join(errs, "; "))
	return docs
}

type manifestOpts struct {
	expectKinds, absentKinds, external string
	expectSpool                        bool
	expectReplicas, expectGrace        int
	configOut                          string
}

type manifestCheck struct {
	*report
	opts     manifestOpts
	docs     []document
	byID     map[string]document
	external map[string]bool
	sts      *document
	podLabel map[string]string
}

func (m *manifestCheck) find(kind, name string) (document, bool) {
	d, ok := m.byID[kind+"/"+name]
	return d, ok
}

// resolves: a reference from doc to kind/name is a rendered object or declared external. A hook may only
// use other hooks of a lower weight (pre-install hooks run before the release's own objects exist).
func (m *manifestCheck) resolves(from document, kind, name string) (bool, string) {
	if m.external[kind+"/"+name] {
		return true, ""
	}
	target, ok := m.find(kind, name)
	if !ok {
		return false, fmt.Sprintf("%s/%s is neither rendered nor declared external", kind, name)
	}
	if from.hook() != "" && from.hook() != "test" {
		if target.hook() == "" {
			return false, fmt.Sprintf("hook %s uses %s/%s, which does not exist yet when the hook runs", from.id(), kind, name)
		}
		if target.weight() >= from.weight() {
			return false, fmt.Sprintf("hook %s (weight %d) uses hook %s/%s of weight %d: not created before it",
				from.id(), from.weight(), kind, name, target.weight())
		}
	}
	return true, ""
}

func (m *manifestCheck) common() {
	seen := map[string]string{}
	dupes := []string{}
	for _, d := range m.docs {
		if prev, ok := seen[d.id()]; ok {
			dupes = append(dupes, d.id()+" ("+prev+", "+d.source+")")
		}
		seen[d.id()] = d.source
	}
	m.check(len(dupes) == 0, "every kind/name is unique", "duplicates: %s", strings.Join(dupes, ", "))

	for _, d := range m.docs {
		what := fmt.Sprintf("%s (%s) has apiVersion, kind, a valid metadata.name", d.id(), d.source)
		name := d.name()
		switch {
		case str(d.o, "apiVersion") == "":
			m.check(false, what, "apiVersion missing")
		case d.kind() == "":
			m.check(false, what, "kind missing")
		case name == "" || len(name) > 253 || !dns1123Subdomain.MatchString(name):
			m.check(false, what, "metadata.name %q is not a DNS-1123 subdomain", name)
		case (d.kind() == "Service" || d.kind() == "StatefulSet") && (len(name) > 63 || !dns1035Label.MatchString(name)):
			m.check(false, what, "a %s name must be a DNS-1035 label of at most 63 characters: %q", d.kind(), name)
		case d.kind() == "StatefulSet" && len(name) > 52:
			m.check(false, what, "StatefulSet name %q is longer than 52: its controller-revision-hash label would not fit", name)
		default:
			m.check(true, what, "")
		}
		labels := stringMap(get(d.o, "metadata", "labels"))
		var missing, bad []string
		for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
			"app.kubernetes.io/managed-by", "app.kubernetes.io/component", "app.kubernetes.io/part-of", "helm.sh/chart"} {
			if labels[k] == "" {
				missing = append(missing, k)
			}
		}
		for k, v := range labels {
			if len(v) > 63 || !labelValue.MatchString(v) {
				bad = append(bad, k+"="+v)
			}
		}
		if labels["app.kubernetes.io/managed-by"] != "" && labels["app.kubernetes.io/managed-by"] != "Helm" {
			bad = append(bad, "app.kubernetes.io/managed-by="+labels["app.kubernetes.io/managed-by"]+" (not Helm)")
		}
		m.check(len(missing) == 0 && len(bad) == 0, d.id()+" has the app.kubernetes.io/* and helm.sh/chart labels",
			"missing %v, invalid %v", missing, bad)
	}

	kinds := map[string]int{}
	for _, d := range m.docs {
		kinds[d.kind()]++
	}
	for _, k := range splitList(m.opts.expectKinds) {
		m.check(kinds[k] > 0, "renders a "+k, "no %s among %v", k, kindList(kinds))
	}
	for _, k := range splitList(m.opts.absentKinds) {
		m.check(kinds[k] == 0, "renders no "+k, "%d rendered", kinds[k])
	}
	m.check(kinds["StatefulSet"] == 1, "renders exactly one StatefulSet", "%d", kinds["StatefulSet"])
	m.check(kinds["Deployment"] == 0, "renders no Deployment (the bridge is a StatefulSet)", "%d", kinds["Deployment"])
}

func kindList(kinds map[string]int) []string {
	var out []string
	for k := range kinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func envByName(container interface{}) map[string]obj {
	out := map[string]obj{}
	for _, e := range list(container, "env") {
		if eo, ok := e.(obj); ok {
			out[str(eo, "name")] = eo
		}
	}
	return out
}

// fromPodName: the variable is the pod's metadata.name, directly or as "<prefix>$(VAR)" of such a variable
// defined before it (Kubernetes expands $(VAR) of earlier variables).
func fromPodName(container interface{}, name string) (bool, string) {
	var defined []obj
	for _, e := range list(container, "env") {
		eo, _ := e.(obj)
		if str(eo, "name") == name {
			if str(eo, "valueFrom", "fieldRef", "fieldPath") == "metadata.name" {
				return true, "fieldRef metadata.name"
			}
			refs := envRef.FindAllStringSubmatch(str(eo, "value"), -1)
			if len(refs) == 1 {
				for _, prev := range defined {
					if str(prev, "name") == refs[0][1] && str(prev, "valueFrom", "fieldRef", "fieldPath") == "metadata.name" {
						return true, fmt.Sprintf("%q with %s = metadata.name", str(eo, "value"), refs[0][1])
					}
				}
			}
			return false, fmt.Sprintf("%s is %v", name, eo)
		}
		defined = append(defined, eo)
	}
	return false, name + " is not set"
}

func (m *manifestCheck) secretRef(from document, container interface{}, envName string, required bool) {
	e, ok := envByName(container)[envName]
	if !ok {
		m.check(false, from.id()+" sets "+envName+" from a Secret", "not set")
		return
	}
	secret := str(e, "valueFrom", "secretKeyRef", "name")
	key := str(e, "valueFrom", "secretKeyRef", "key")
	if !m.check(secret != "" && key != "", from.id()+" sets "+envName+" from a Secret", "no secretKeyRef: %v", e) {
		return
	}
	if ok, why := m.resolves(from, "Secret", secret); !ok {
		m.check(false, from.id()+": "+envName+" Secret "+secret+" exists", "%s", why)
		return
	}
	if d, rendered := m.find("Secret", secret); rendered {
		data := stringMap(get(d.o, "data"))
		_, has := data[key]
		if !has {
			_, has = stringMap(get(d.o, "stringData"))[key]
		}
		m.check(has || (!required && get(e, "valueFrom", "secretKeyRef", "optional") == true),
			fmt.Sprintf("%s: %s Secret %s has key %s", from.id(), envName, secret, key), "key missing")
	} else {
		m.check(true, fmt.Sprintf("%s: %s from external Secret %s key %s", from.id(), envName, secret, key), "")
	}
}

func (m *manifestCheck) securityContext(d document, podSpec interface{}, container interface{}) {
	pod := func(k ...string) interface{} { return get(podSpec, append([]string{"securityContext"}, k...)...) }
	ctr := func(k ...string) interface{} { return get(container, append([]string{"securityContext"}, k...)...) }
	m.check(ctr("runAsNonRoot") == true || (pod("runAsNonRoot") == true && ctr("runAsNonRoot") == nil),
		d.id()+": runAsNonRoot", "pod %v, container %v", pod("runAsNonRoot"), ctr("runAsNonRoot"))
	uid, set := asInt(ctr("runAsUser"))
	if !set {
		uid, set = asInt(pod("runAsUser"))
	}
	m.check(!set || uid != 0, d.id()+": runAsUser is not 0", "runAsUser 0")
	m.check(ctr("readOnlyRootFilesystem") == true, d.id()+": readOnlyRootFilesystem", "%v", ctr("readOnlyRootFilesystem"))
	m.check(ctr("allowPrivilegeEscalation") == false, d.id()+": allowPrivilegeEscalation false", "%v", ctr("allowPrivilegeEscalation"))
	dropsAll := false
	for _, c := range list(container, "securityContext", "capabilities", "drop") {
		dropsAll = dropsAll || c == "ALL"
	}
	m.check(dropsAll && len(list(container, "securityContext", "capabilities", "add")) == 0,
		d.id()+": capabilities drop ALL, add none", "%v", ctr("capabilities"))
	seccomp := str(container, "securityContext", "seccompProfile", "type")
	if seccomp == "" {
		seccomp = str(podSpec, "securityContext", "seccompProfile", "type")
	}
	m.check(seccomp == "RuntimeDefault", d.id()+": seccompProfile RuntimeDefault", "%q", seccomp)
}

func (m *manifestCheck) configText() (document, string, bool) {
	for _, d := range m.docs {
		if d.kind() == "ConfigMap" {
			if s, ok := get(d.o, "data", "mqtt2pg.conf").(string); ok {
				return d, s, true
			}
		}
	}
	return document{}, "", false
}

var httpPort = regexp.MustCompile(`(?s)http\s*=\s*\{[^}]*port\s*=\s*([0-9]+)\s*;`)

func (m *manifestCheck) statefulSet() {
	for i := range m.docs {
		if m.docs[i].kind() == "StatefulSet" {
			m.sts = &m.docs[i]
		}
	}
	if m.sts == nil {
		return
	}
	d := *m.sts
	spec := get(d.o, "spec")
	pod := get(spec, "template", "spec")
	m.podLabel = stringMap(get(spec, "template", "metadata", "labels"))
	sel := stringMap(get(spec, "selector", "matchLabels"))
	m.check(subset(sel, m.podLabel), d.id()+": selector matches the pod template's labels", "selector %v, labels %v", sel, m.podLabel)

	svc := str(spec, "serviceName")
	if s, ok := m.find("Service", svc); m.check(ok, d.id()+": serviceName "+svc+" is a rendered Service", "not rendered") {
		m.check(str(s.o, "spec", "clusterIP") == "None", "Service/"+svc+" is headless (clusterIP None)", "clusterIP %q", str(s.o, "spec", "clusterIP"))
	}
	if m.opts.expectReplicas >= 0 {
		n, _ := asInt(get(spec, "replicas"))
		m.check(n == m.opts.expectReplicas, fmt.Sprintf("%s: replicas %d", d.id(), m.opts.expectReplicas), "replicas %v", get(spec, "replicas"))
	}

	grace, ok := asInt(get(pod, "terminationGracePeriodSeconds"))
	if m.opts.expectGrace > 0 {
		m.check(ok && grace == m.opts.expectGrace, fmt.Sprintf("%s: terminationGracePeriodSeconds %d (the drain)", d.id(), m.opts.expectGrace),
			"%v", get(pod, "terminationGracePeriodSeconds"))
	} else {
		m.check(ok && grace >= 30, d.id()+": terminationGracePeriodSeconds set (>= 30 s for the drain)", "%v", get(pod, "terminationGracePeriodSeconds"))
	}

	annotations := stringMap(get(spec, "template", "metadata", "annotations"))
	m.check(sha256Hex.MatchString(annotations["checksum/config"]), d.id()+": pod template has the checksum/config annotation",
		"%q", annotations["checksum/config"])

	var container interface{}
	for _, c := range list(pod, "containers") {
		if str(c, "name") == "mqtt2pg" {
			container = c
		}
	}
	if !m.check(container != nil, d.id()+": has the mqtt2pg container", "containers %v", list(pod, "containers")) {
		return
	}
	ok, how := fromPodName(container, "MQTT2PG_CLIENT_ID")
	m.check(ok, d.id()+": MQTT2PG_CLIENT_ID from the pod's metadata.name ("+how+")", "%s", how)
	m.secretRef(d, container, "MQTT2PG_DB_PASSWORD", true)
	m.secretRef(d, container, "MQTT2PG_MQTT_PASSWORD", false)

	metricsPort := 0
	for _, p := range list(container, "ports") {
		if str(p, "name") == "metrics" {
			metricsPort, _ = asInt(get(p, "containerPort"))
		}
	}
	m.check(metricsPort > 0, fmt.Sprintf("%s: container port named metrics (%d)", d.id(), metricsPort), "none")
	if _, text, ok := m.configText(); ok {
		port := "(none)"
		if match := httpPort.FindStringSubmatch(text); match != nil {
			port = match[1]
		}
		m.check(port == strconv.Itoa(metricsPort), d.id()+": the config's http.port is the metrics port",
			"http.port %s, metrics port %d", port, metricsPort)
	}
	for _, p := range []struct{ probe, path string }{{"livenessProbe", "/healthz"}, {"readinessProbe", "/readyz"}} {
		path := str(container, p.probe, "httpGet", "path")
		port := get(container, p.probe, "httpGet", "port")
		portOK := port == "metrics"
		if n, isInt := asInt(port); isInt {
			portOK = n == metricsPort
		}
		m.check(path == p.path && portOK, fmt.Sprintf("%s: %s httpGet %s on the metrics port", d.id(), p.probe, p.path),
			"path %q port %v", path, port)
	}
	m.securityContext(d, pod, container)
	limit := str(container, "resources", "limits", "memory")
	m.check(limit != "", d.id()+": memory limit set ("+limit+")", "none")

	args := fmt.Sprint(list(container, "args"))
	m.check(strings.Contains(args, "-c /etc/mqtt2pg/mqtt2pg.conf") && strings.HasSuffix(args, "run]"),
		d.id()+": runs `-c /etc/mqtt2pg/mqtt2pg.conf run`", "args %s", args)
	mounts := map[string]string{}
	for _, vm := range list(container, "volumeMounts") {
		mounts[str(vm, "mountPath")] = str(vm, "name")
	}
	volumes := map[string]obj{}
	for _, v := range list(pod, "volumes") {
		if vo, ok := v.(obj); ok {
			volumes[str(vo, "name")] = vo
		}
	}
	cfgVol := volumes[mounts["/etc/mqtt2pg"]]
	cm := str(cfgVol, "configMap", "name")
	if m.check(cm != "", d.id()+": /etc/mqtt2pg is a ConfigMap volume", "mount %q, volume %v", mounts["/etc/mqtt2pg"], cfgVol) {
		if ok, why := m.resolves(d, "ConfigMap", cm); m.check(ok, d.id()+": ConfigMap "+cm+" is rendered", "%s", why) {
			c, _ := m.find("ConfigMap", cm)
			_, has := get(c.o, "data", "mqtt2pg.conf").(string)
			m.check(has, "ConfigMap/"+cm+" has the key mqtt2pg.conf", "keys %v", get(c.o, "data"))
		}
	}
	spoolVol := mounts["/var/lib/mqtt2pg/spool"]
	m.check(spoolVol != "", d.id()+": a volume is mounted at /var/lib/mqtt2pg/spool", "mounts %v", mounts)
	var claim interface{}
	for _, t := range list(spec, "volumeClaimTemplates") {
		if str(t, "metadata", "name") == spoolVol {
			claim = t
		}
	}
	if m.opts.expectSpool {
		storage := str(claim, "spec", "resources", "requests", "storage")
		m.check(claim != nil && storage != "" && volumes[spoolVol] == nil,
			fmt.Sprintf("%s: spool is a volumeClaimTemplate (%s)", d.id(), storage), "claim %v, pod volume %v", claim, volumes[spoolVol])
	} else {
		m.check(claim == nil && get(volumes[spoolVol], "emptyDir") != nil, d.id()+": spool is an emptyDir (spool.enabled false)",
			"claim %v, volume %v", claim, volumes[spoolVol])
	}
	for path, name := range mounts {
		_, isVolume := volumes[name]
		isClaim := false
		for _, t := range list(spec, "volumeClaimTemplates") {
			isClaim = isClaim || str(t, "metadata", "name") == name
		}
		m.check(isVolume || isClaim, fmt.Sprintf("%s: mount %s has a volume (%s)", d.id(), path, name), "no volume or claim %q", name)
	}
	if sa := str(pod, "serviceAccountName"); sa != "" && sa != "default" {
		ok, why := m.resolves(d, "ServiceAccount", sa)
		m.check(ok, d.id()+": ServiceAccount "+sa+" exists", "%s", why)
	}
	for _, v := range volumes {
		if secret := str(v, "secret", "secretName"); secret != "" {
			ok, why := m.resolves(d, "Secret", secret)
			m.check(ok, d.id()+": volume Secret "+secret+" exists", "%s", why)
		}
	}
}

func (m *manifestCheck) others() {
	for _, d := range m.docs {
		switch d.kind() {
		case "Service":
			sel := stringMap(get(d.o, "spec", "selector"))
			m.check(m.podLabel != nil && subset(sel, m.podLabel), d.id()+": selects the bridge pods", "selector %v", sel)
			port := list(d.o, "spec", "ports")
			m.check(len(port) == 1 && str(port[0], "name") == "metrics" && str(port[0], "targetPort") == "metrics",
				d.id()+": one port, named metrics, to the pods' metrics port", "ports %v", port)
		case "ServiceMonitor":
			sel := stringMap(get(d.o, "spec", "selector", "matchLabels"))
			var matched []string
			for _, s := range m.docs {
				if s.kind() == "Service" && subset(sel, stringMap(get(s.o, "metadata", "labels"))) {
					matched = append(matched, s.name())
				}
			}
			m.check(len(matched) == 1 && str(m.byID["Service/"+matched[0]].o, "spec", "clusterIP") != "None",
				fmt.Sprintf("%s selects exactly the metrics Service %v", d.id(), matched), "selects %v", matched)
			ep := list(d.o, "spec", "endpoints")
			m.check(len(ep) == 1 && str(ep[0], "port") == "metrics" && str(ep[0], "path") == "/metrics",
				d.id()+": scrapes port metrics, path /metrics", "endpoints %v", ep)
		case "PodDisruptionBudget":
			sel := stringMap(get(d.o, "spec", "selector", "matchLabels"))
			m.check(m.podLabel != nil && subset(sel, m.podLabel), d.id()+": selects the bridge pods", "selector %v", sel)
			minA, maxU := get(d.o, "spec", "minAvailable"), get(d.o, "spec", "maxUnavailable")
			m.check((minA == nil) != (maxU == nil), d.id()+": exactly one of minAvailable, maxUnavailable", "%v / %v", minA, maxU)
		case "NetworkPolicy":
			sel := stringMap(get(d.o, "spec", "podSelector", "matchLabels"))
			m.check(m.podLabel != nil && subset(sel, m.podLabel), d.id()+": applies to the bridge pods", "podSelector %v", sel)
			var metricsRule interface{}
			for _, rule := range list(d.o, "spec", "ingress") {
				for _, p := range list(rule, "ports") {
					if str(p, "port") == "metrics" {
						metricsRule = rule
					}
				}
			}
			if m.check(metricsRule != nil, d.id()+": lets traffic in to the metrics port", "ingress %v", get(d.o, "spec", "ingress")) {
				from := list(metricsRule, "from")
				testAllowed := len(from) == 0
				for _, peer := range from {
					testAllowed = testAllowed || stringMap(get(peer, "podSelector", "matchLabels"))["app.kubernetes.io/component"] == "test"
				}
				m.check(testAllowed, d.id()+": lets the helm test pod reach the metrics port", "from %v", from)
			}
		case "Secret":
			bad := []string{}
			for k, v := range stringMap(get(d.o, "data")) {
				if _, err := base64.StdEncoding.DecodeString(v); err != nil {
					bad = append(bad, k)
				}
			}
			m.check(len(bad) == 0, d.id()+": data is base64", "keys %v", bad)
		case "Job":
			m.job(d)
		case "Pod":
			m.testPod(d)
		}
	}
}

func hookSet(d document) map[string]bool {
	set := map[string]bool{}
	for _, h := range strings.Split(d.hook(), ",") {
		set[strings.TrimSpace(h)] = true
	}
	return set
}

func (m *manifestCheck) job(d document) {
	hooks := hookSet(d)
	m.check(len(hooks) == 2 && hooks["pre-install"] && hooks["pre-upgrade"], d.id()+": helm.sh/hook pre-install,pre-upgrade",
		"helm.sh/hook %q", d.hook())
	pod := get(d.o, "spec", "template", "spec")
	rp := str(pod, "restartPolicy")
	m.check(rp == "Never" || rp == "OnFailure", d.id()+": restartPolicy "+rp, "restartPolicy %q", rp)
	_, hasBackoff := asInt(get(d.o, "spec", "backoffLimit"))
	_, hasDeadline := asInt(get(d.o, "spec", "activeDeadlineSeconds"))
	m.check(hasBackoff && hasDeadline, d.id()+": bounded (backoffLimit, activeDeadlineSeconds)", "%v", get(d.o, "spec"))
	containers := list(pod, "containers")
	if !m.check(len(containers) == 1, d.id()+": one container", "%d", len(containers)) {
		return
	}
	c := containers[0]
	cmd := append(list(c, "command"), list(c, "args")...)
	var words []string
	for _, w := range cmd {
		words = append(words, fmt.Sprint(w))
	}
	line := strings.Join(words, " ")
	// The owner's conninfo holds its password: in args every user of the node would read it in ps.
	m.check(strings.HasPrefix(line, "migrate") && !strings.Contains(line, "MQTT2PG_ADMIN_CONNINFO") &&
		!strings.Contains(line, "--db"), d.id()+": runs `mqtt2pg migrate`, the conninfo only in its environment",
		"command+args %q", line)
	m.secretRef(d, c, "MQTT2PG_ADMIN_CONNINFO", true)
	m.securityContext(d, pod, c)
	if sa := str(pod, "serviceAccountName"); sa != "" && sa != "default" {
		ok, why := m.resolves(d, "ServiceAccount", sa)
		m.check(ok, d.id()+": ServiceAccount "+sa+" exists when the hook runs", "%s", why)
	}
	for _, v := range list(pod, "volumes") {
		if cm := str(v, "configMap", "name"); cm != "" {
			ok, why := m.resolves(d, "ConfigMap", cm)
			m.check(ok, d.id()+": ConfigMap "+cm+" exists when the hook runs", "%s", why)
		}
	}
}

func (m *manifestCheck) testPod(d document) {
	if !m.check(d.hook() == "test", d.id()+": helm.sh/hook test", "helm.sh/hook %q (a bare Pod that is not a test?)", d.hook()) {
		return
	}
	pod := get(d.o, "spec")
	m.check(str(pod, "restartPolicy") == "Never", d.id()+": restartPolicy Never", "%q", str(pod, "restartPolicy"))
	var svc document
	for _, s := range m.docs {
		if s.kind() == "Service" && str(s.o, "spec", "clusterIP") != "None" {
			svc = s
		}
	}
	port := ""
	if p := list(svc.o, "spec", "ports"); len(p) > 0 {
		n, _ := asInt(get(p[0], "port"))
		port = strconv.Itoa(n)
	}
	url := fmt.Sprintf("http://%s:%s/readyz", svc.name(), port)
	var words []string
	for _, c := range list(pod, "containers") {
		for _, w := range append(list(c, "command"), list(c, "args")...) {
			words = append(words, fmt.Sprint(w))
		}
	}
	m.check(svc.name() != "" && strings.Contains(strings.Join(words, " "), url), d.id()+": checks "+url, "command %q", words)
	image := str(pod, "containers", "0", "image")
	m.check(image != "" && !strings.Contains(image, "mqtt2pg"), d.id()+": a tiny image of its own ("+image+")", "image %q", image)
}

func runManifests(args []string) {
	fs := flag.NewFlagSet("manifests", flag.ExitOnError)
	var o manifestOpts
	label := fs.String("label", "", "prefix of every result line")
	fs.StringVar(&o.expectKinds, "expect-kinds", "", "kinds that must be rendered, comma-separated")
	fs.StringVar(&o.absentKinds, "absent-kinds", "", "kinds that must not be rendered")
	fs.StringVar(&o.external, "external", "", "Kind/name objects that exist outside the chart")
	fs.BoolVar(&o.expectSpool, "expect-spool", true, "the spool must be a volumeClaimTemplate (=false: an emptyDir)")
	fs.IntVar(&o.expectReplicas, "expect-replicas", -1, "replicas of the StatefulSet")
	fs.IntVar(&o.expectGrace, "expect-grace", 0, "terminationGracePeriodSeconds")
	fs.StringVar(&o.configOut, "config-out", "", "write the ConfigMap's mqtt2pg.conf to this file")
	_ = fs.Parse(args)
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: deploycheck manifests [flags] RENDERED.yaml")
		os.Exit(2)
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	m := &manifestCheck{report: &report{label: *label}, opts: o, byID: map[string]document{}, external: map[string]bool{}}
	m.docs = readDocuments(m.report, data)
	for _, d := range m.docs {
		m.byID[d.id()] = d
	}
	for _, e := range splitList(o.external) {
		m.external[e] = true
	}
	m.common()
	m.statefulSet()
	m.others()
	if o.configOut != "" {
		_, text, ok := m.configText()
		if m.check(ok, "a ConfigMap carries mqtt2pg.conf", "none") {
			if err := os.WriteFile(o.configOut, []byte(text), 0o644); err != nil {
				m.check(false, "write "+o.configOut, "%v", err)
			}
		}
	}
	m.exit()
}

// ---------------------------------------------------------------------------------------------------
// chart: values.yaml, values.schema.json, README.md, ci/

type leaf struct {
	path      string
	commented bool
}

// walkValues lists every key path of values.yaml with whether a comment documents it (a comment line
// above the key, on the same line, or above the group for a member of a list).
func walkValues(n *yaml.Node, prefix string, out *[]leaf, groups *[]string) {
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			walkValues(c, prefix, out, groups)
		}
		return
	}
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := k.Value
		if prefix != "" {
			p = prefix + "." + k.Value
		}
		commented := strings.TrimSpace(k.HeadComment) != "" || strings.TrimSpace(k.LineComment) != "" ||
			strings.TrimSpace(v.LineComment) != ""
		if v.Kind == yaml.MappingNode && len(v.Content) > 0 {
			*groups = append(*groups, p)
			walkValues(v, p, out, groups)
		} else {
			*out = append(*out, leaf{p, commented})
		}
	}
}

func schemaHas(schema interface{}, path string) bool {
	node := schema
	for _, k := range strings.Split(path, ".") {
		props, _ := get(node, "properties").(map[string]interface{})
		next, ok := props[k]
		if !ok {
			return false
		}
		node = next
	}
	return true
}

func runChart(args []string) {
	r := &report{label: "chart"}
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: deploycheck chart CHART_DIR")
		os.Exit(2)
	}
	dir := args[0]
	raw, err := os.ReadFile(filepath.Join(dir, "values.yaml"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var root yaml.Node
	var leaves []leaf
	var groups []string
	if r.check(yaml.Unmarshal(raw, &root) == nil, "values.yaml parses", "%v", yaml.Unmarshal(raw, &root)) {
		walkValues(&root, "", &leaves, &groups)
	}
	var undocumented []string
	for _, l := range leaves {
		if !l.commented {
			undocumented = append(undocumented, l.path)
		}
	}
	r.check(len(leaves) > 0 && len(undocumented) == 0, fmt.Sprintf("values.yaml documents every one of its %d values in a comment", len(leaves)),
		"no comment for %v", undocumented)

	var schema interface{}
	sraw, err := os.ReadFile(filepath.Join(dir, "values.schema.json"))
	if r.check(err == nil && json.Unmarshal(sraw, &schema) == nil, "values.schema.json is JSON", "%v", err) {
		var untyped []string
		for _, l := range leaves {
			if !schemaHas(schema, l.path) {
				untyped = append(untyped, l.path)
			}
		}
		r.check(len(untyped) == 0, "values.schema.json types every value of values.yaml", "missing %v", untyped)
		r.check(get(schema, "additionalProperties") == false && get(schema, "properties", "config", "properties", "mqtt", "additionalProperties") == false,
			"values.schema.json refuses unknown keys (top level, config groups)", "additionalProperties is not false")
	}

	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if r.check(err == nil, "README.md exists", "%v", err) {
		var unmentioned []string
		for _, l := range leaves {
			if !bytes.Contains(readme, []byte("`"+l.path+"`")) {
				unmentioned = append(unmentioned, l.path)
			}
		}
		r.check(len(unmentioned) == 0, "README.md summarises every value (as `path`)", "not mentioned: %v", unmentioned)
		for _, s := range []string{"helm lint", "helm template", "StatefulSet", "terminationGracePeriodSeconds", "/healthz", "/readyz"} {
			r.check(bytes.Contains(readme, []byte(s)), "README.md covers "+s, "not mentioned")
		}
	}
	for _, name := range []string{"minimal", "spool-and-monitoring", "existing-secret"} {
		_, err := os.Stat(filepath.Join(dir, "ci", name+"-values.yaml"))
		r.check(err == nil, "ci/"+name+"-values.yaml exists", "%v", err)
	}
	for _, f := range []string{"Chart.yaml", "templates/_helpers.tpl", "templates/NOTES.txt", ".helmignore"} {
		_, err := os.Stat(filepath.Join(dir, f))
		r.check(err == nil, f+" exists", "%v", err)
	}
	tests, _ := filepath.Glob(filepath.Join(dir, "templates", "tests", "*.yaml"))
	r.check(len(tests) > 0, "templates/tests/ has a test", "none")
	r.exit()
}

// ---------------------------------------------------------------------------------------------------
// compose

func runCompose(args []string) {
	r := &report{label: "compose"}
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: deploycheck compose docker-compose.yml")
		os.Exit(2)
	}
	file := args[0]
	dir := filepath.Dir(file)
	raw, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var doc obj
	err = yaml.Unmarshal(raw, &doc)
	if !r.check(err == nil, filepath.Base(file)+" parses as YAML (anchors and merge keys resolved)", "%v", err) {
		r.exit()
	}
	services, _ := get(doc, "services").(obj)
	volumes, _ := get(doc, "volumes").(obj)
	for name, image := range map[string]string{"db": "timescale/timescaledb:latest-pg15", "mosquitto": "eclipse-mosquitto:2",
		"mosquitto-auth": "eclipse-mosquitto:2", "migrate": "mqtt2pg:local", "mqtt2pg": "mqtt2pg:local"} {
		r.check(str(services, name, "image") == image, "service "+name+" uses image "+image, "image %q", str(services, name, "image"))
	}
	for _, name := range []string{"migrate", "mqtt2pg"} {
		ctx := filepath.Join(dir, str(services, name, "build", "context"))
		dockerfile := filepath.Join(ctx, str(services, name, "build", "dockerfile"))
		_, err := os.Stat(dockerfile)
		r.check(str(services, name, "build", "context") != "" && err == nil,
			fmt.Sprintf("service %s builds from %s", name, str(services, name, "build", "dockerfile")), "%v", err)
	}
	var mig []string
	for _, w := range list(services, "migrate", "command") {
		mig = append(mig, fmt.Sprint(w))
	}
	// main's compose passes "--timescaledb" after migrate (the image's TimescaleDB database).
	r.check(len(mig) >= 3 && mig[0] == "--db" && strings.Contains(mig[1], "user=mqtt2pg_owner") && mig[2] == "migrate",
		"migrate runs `mqtt2pg --db <owner conninfo> migrate`", "command %q", mig)
	r.check(str(services, "migrate", "restart") == "no", "migrate is one-shot (restart: \"no\")", "restart %q", str(services, "migrate", "restart"))

	order := map[string]map[string]string{
		"migrate":   {"db": "service_healthy"},
		"mosquitto": {"mosquitto-auth": "service_completed_successfully"},
		"mqtt2pg":   {"migrate": "service_completed_successfully", "mosquitto": "service_started"},
	}
	for svc, deps := range order {
		for dep, cond := range deps {
			got := str(services, svc, "depends_on", dep, "condition")
			r.check(got == cond, fmt.Sprintf("%s starts after %s (%s)", svc, dep, cond), "condition %q", got)
		}
	}
	r.check(get(services, "db", "healthcheck", "test") != nil, "db has a health check", "none")
	r.check(str(services, "mqtt2pg", "stop_grace_period") != "", "mqtt2pg has a stop_grace_period for the drain", "none")
	r.check(get(services, "mqtt2pg", "read_only") == true, "mqtt2pg runs with a read-only root file system", "read_only %v", get(services, "mqtt2pg", "read_only"))
	env := stringMap(get(services, "mqtt2pg", "environment"))
	for _, k := range []string{"MQTT2PG_CLIENT_ID", "MQTT2PG_DB_PASSWORD", "MQTT2PG_MQTT_PASSWORD"} {
		r.check(env[k] != "", "mqtt2pg sets "+k, "not set")
	}

	names := make([]string, 0, len(services))
	for name := range services {
		names = append(names, name)
	}
	sort.Strings(names)
	mountedConf := ""
	for _, name := range names {
		for dep := range stringMapKeys(get(services, name, "depends_on")) {
			_, ok := services[dep]
			r.check(ok, "service "+name+" depends on an existing service "+dep, "no service %q", dep)
		}
		for _, v := range list(services, name, "volumes") {
			spec, _ := v.(string)
			parts := strings.Split(spec, ":")
			src := parts[0]
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				p := src
				if !filepath.IsAbs(p) {
					p = filepath.Join(dir, src)
				}
				_, err := os.Stat(p)
				r.check(err == nil, fmt.Sprintf("service %s mounts an existing %s", name, src), "%v", err)
				if name == "mqtt2pg" && len(parts) > 1 && parts[1] == "/etc/mqtt2pg/mqtt2pg.conf" {
					mountedConf = p
				}
			} else {
				_, ok := volumes[src]
				r.check(ok, fmt.Sprintf("service %s uses declared volume %s", name, src), "volume %q not declared", src)
			}
		}
	}
	r.check(mountedConf == filepath.Join(dir, "mqtt2pg.conf"), "mqtt2pg mounts mqtt2pg.conf at /etc/mqtt2pg/mqtt2pg.conf",
		"mounted %q", mountedConf)

	// mosquitto.conf, acl and passwd
	conf, err := os.ReadFile(filepath.Join(dir, "mosquitto", "mosquitto.conf"))
	if r.check(err == nil, "mosquitto/mosquitto.conf exists", "%v", err) {
		settings := map[string][]string{}
		for _, line := range strings.Split(string(conf), "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && !strings.HasPrefix(f[0], "#") {
				settings[f[0]] = append(settings[f[0]], strings.Join(f[1:], " "))
			}
		}
		one := func(k string) string {
			if len(settings[k]) == 1 {
				return settings[k][0]
			}
			return fmt.Sprint(settings[k])
		}
		r.check(one("max_queued_messages") == "0", "mosquitto.conf sets max_queued_messages 0", "max_queued_messages %s", one("max_queued_messages"))
		r.check(one("allow_anonymous") == "false", "mosquitto.conf refuses anonymous clients", "allow_anonymous %s", one("allow_anonymous"))
		r.check(one("persistence") == "true", "mosquitto.conf persists sessions", "persistence %s", one("persistence"))
		r.check(one("password_file") == "/mosquitto/auth/passwd" && one("acl_file") == "/mosquitto/auth/acl",
			"mosquitto.conf reads passwd and acl from the mosquitto-auth volume", "password_file %s, acl_file %s", one("password_file"), one("acl_file"))
		r.check(strings.HasPrefix(one("listener"), "1883"), "mosquitto.conf listens on 1883", "listener %s", one("listener"))
	}
	users := readPasswd(r, filepath.Join(dir, "mosquitto", "passwd"))
	rules := readACL(r, filepath.Join(dir, "mosquitto", "acl"))
	bridge := str(services, "mqtt2pg", "environment", "MQTT2PG_MQTT_PASSWORD")
	r.check(users["mqtt2pg"] != "" && users["mqtt2pg"] == bridge, "passwd has the bridge user mqtt2pg with the password compose gives it",
		"passwd %q, compose %q", users["mqtt2pg"], bridge)
	r.check(len(rules["mqtt2pg"]) == 1 && rules["mqtt2pg"][0] == "read solar/#", "acl: mqtt2pg may only read solar/#", "rules %v", rules["mqtt2pg"])
	deviceTopic := regexp.MustCompile(`^write solar/[a-z0-9][a-z0-9_-]*/([A-Za-z0-9][A-Za-z0-9_.:-]*)/#$`)
	var devices []string
	for u := range users {
		if u != "mqtt2pg" {
			devices = append(devices, u)
		}
	}
	sort.Strings(devices)
	r.check(len(devices) > 0, fmt.Sprintf("passwd has %d demo devices", len(devices)), "none")
	for _, u := range devices {
		got := rules[u]
		ok := len(got) == 1 && deviceTopic.MatchString(got[0]) && deviceTopic.FindStringSubmatch(got[0])[1] == u
		r.check(ok, fmt.Sprintf("acl: %s may only write solar/<tenant>/%s/# (%v)", u, u, got), "rules %v", got)
	}
	for u := range rules {
		_, ok := users[u]
		r.check(ok, "acl user "+u+" has a password", "not in passwd")
	}
	r.exit()
}

func stringMapKeys(v interface{}) map[string]bool {
	out := map[string]bool{}
	switch t := v.(type) {
	case obj:
		for k := range t {
			out[k] = true
		}
	case []interface{}:
		for _, x := range t {
			out[fmt.Sprint(x)] = true
		}
	}
	return out
}

// readPasswd reads user:password lines (mosquitto_passwd -U refuses comments and blank lines).
func readPasswd(r *report, file string) map[string]string {
	users := map[string]string{}
	raw, err := os.ReadFile(file)
	if !r.check(err == nil, "mosquitto/passwd exists", "%v", err) {
		return users
	}
	var bad []string
	for i, line := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
		u, p, ok := strings.Cut(line, ":")
		if !ok || u == "" || p == "" || strings.HasPrefix(line, "#") {
			bad = append(bad, fmt.Sprintf("line %d %q", i+1, line))
			continue
		}
		users[u] = p
	}
	r.check(len(bad) == 0 && len(users) > 0, "mosquitto/passwd is user:password lines only (what mosquitto_passwd -U accepts)", "%v", bad)
	return users
}

// readACL returns, per user, its "read|write|readwrite topic" rules.
func readACL(r *report, file string) map[string][]string {
	rules := map[string][]string{}
	f, err := os.Open(file)
	if !r.check(err == nil, "mosquitto/acl exists", "%v", err) {
		return rules
	}
	defer f.Close()
	user := ""
	var anonymous []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch fields[0] {
		case "user":
			user = strings.Join(fields[1:], " ")
		case "topic":
			rule := strings.Join(fields[1:], " ")
			if len(fields) == 2 {
				rule = "readwrite " + fields[1]
			}
			if user == "" {
				anonymous = append(anonymous, rule)
			} else {
				rules[user] = append(rules[user], rule)
			}
		default:
			anonymous = append(anonymous, sc.Text())
		}
	}
	r.check(len(anonymous) == 0, "acl: no rule outside a user block (no pattern, no anonymous topic)", "%v", anonymous)
	return rules
}

// ---------------------------------------------------------------------------------------------------
// dockerfile

type instruction struct {
	cmd, args string
	line      int
}

func parseDockerfile(raw string) []instruction {
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(raw, "\n") {
		t := strings.TrimSpace(line)
		if cur.Len() == 0 && (t == "" || strings.HasPrefix(t, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(t, "#") {
			continue // comment inside a continued instruction
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(t, "\\") {
			cur.WriteString(strings.TrimSuffix(t, "\\") + " ")
			continue
		}
		cur.WriteString(t)
		full := cur.String()
		cur.Reset()
		cmd, args, _ := strings.Cut(full, " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args), start})
	}
	return out
}

func aptPackages(run string) []string {
	var pkgs []string
	for _, part := range strings.Split(run, "&&") {
		f := strings.Fields(part)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "apt-get" && f[i+1] == "install" {
				for _, w := range f[i+2:] {
					if !strings.HasPrefix(w, "-") {
						pkgs = append(pkgs, w)
					}
				}
			}
		}
	}
	return pkgs
}

func runDockerfile(args []string) {
	fs := flag.NewFlagSet("dockerfile", flag.ExitOnError)
	context := fs.String("context", ".", "build context (the repository root)")
	needed := fs.String("needed-packages", "", "packages the built binary needs at run time, comma-separated")
	_ = fs.Parse(args)
	r := &report{label: "dockerfile"}
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: deploycheck dockerfile [--context DIR] [--needed-packages a,b] Dockerfile")
		os.Exit(2)
	}
	raw, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ins := parseDockerfile(string(raw))
	type stage struct {
		from, name string
		ins        []instruction
	}
	var stages []*stage
	for _, in := range ins {
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			s := &stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) > 0 {
			stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
		} else if in.cmd != "ARG" {
			r.check(false, "nothing but ARG before the first FROM", "line %d: %s", in.line, in.cmd)
		}
	}
	if !r.check(len(stages) >= 2, fmt.Sprintf("multi-stage (%d FROM lines)", len(stages)), "%d stage(s)", len(stages)) {
		r.exit()
	}
	for i, s := range stages {
		r.check(s.from == "debian:12-slim", fmt.Sprintf("stage %d is FROM debian:12-slim", i+1), "FROM %s", s.from)
	}
	build, final := stages[0], stages[len(stages)-1]
	r.check(build.name == "build", "first stage is named build", "named %q", build.name)
	joined := func(s *stage, cmd string) []instruction {
		var out []instruction
		for _, in := range s.ins {
			if in.cmd == cmd {
				out = append(out, in)
			}
		}
		return out
	}
	var buildPkgs, buildRun []string
	for _, in := range joined(build, "RUN") {
		buildPkgs = append(buildPkgs, aptPackages(in.args)...)
		buildRun = append(buildRun, in.args)
	}
	has := func(set []string, x string) bool {
		for _, s := range set {
			if s == x {
				return true
			}
		}
		return false
	}
	for _, p := range []string{"build-essential", "cmake", "pkg-config", "libpaho-mqtt-dev", "libpq-dev", "libcjson-dev",
		"libconfig-dev", "libcunit1-dev", "libmicrohttpd-dev"} {
		r.check(has(buildPkgs, p), "build stage installs "+p, "not in %v", buildPkgs)
	}
	runs := strings.Join(buildRun, " && ")
	for _, step := range []string{
		"cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMQTT2PG_TESTS=OFF",
		"cmake --build build",
		"cmake --install build --prefix /opt/mqtt2pg",
	} {
		r.check(strings.Contains(runs, step), "build stage runs `"+step+"`", "not found")
	}
	for _, in := range joined(build, "COPY") {
		f := strings.Fields(in.args)
		for _, src := range f[:len(f)-1] {
			if strings.HasPrefix(src, "--") {
				continue
			}
			_, err := os.Stat(filepath.Join(*context, src))
			r.check(err == nil, fmt.Sprintf("COPY source %s exists in the context", src), "%v", err)
		}
	}
	var finalPkgs []string
	for _, in := range joined(final, "RUN") {
		finalPkgs = append(finalPkgs, aptPackages(in.args)...)
	}
	for _, p := range []string{"libpaho-mqtt1.3", "libpq5", "libcjson1", "libconfig9", "ca-certificates"} {
		r.check(has(finalPkgs, p), "final stage installs "+p, "not in %v", finalPkgs)
	}
	var heavy []string
	for _, p := range finalPkgs {
		if strings.HasSuffix(p, "-dev") || p == "build-essential" || p == "cmake" || p == "gcc" {
			heavy = append(heavy, p)
		}
	}
	r.check(len(heavy) == 0, "final stage installs no compiler or -dev package", "%v", heavy)
	for _, p := range splitList(*needed) {
		r.check(has(finalPkgs, p) || p == "libc6", "final stage provides "+p+" (a library the binary links)", "not in %v", finalPkgs)
	}
	var copied bool
	for _, in := range joined(final, "COPY") {
		copied = copied || (strings.Contains(in.args, "--from=build") &&
			strings.Contains(in.args, "/opt/mqtt2pg/bin/mqtt2pg /usr/local/bin/mqtt2pg"))
	}
	r.check(copied, "final stage copies /opt/mqtt2pg/bin/mqtt2pg from the build stage to /usr/local/bin", "no such COPY --from=build")
	users := joined(final, "USER")
	user := ""
	if len(users) > 0 {
		user = users[len(users)-1].args
	}
	uid, _, _ := strings.Cut(user, ":")
	r.check(user != "" && uid != "0" && uid != "root", "final stage runs as a non-root USER ("+user+")", "USER %q", user)
	r.check(uid == "10001", "the USER is the numeric uid 10001 (verifiable by runAsNonRoot)", "USER %q", user)
	last := func(cmd string) string {
		l := joined(final, cmd)
		if len(l) == 0 {
			return ""
		}
		return l[len(l)-1].args
	}
	var entry, cmd []string
	eerr := json.Unmarshal([]byte(last("ENTRYPOINT")), &entry)
	r.check(eerr == nil && len(entry) == 1 && entry[0] == "/usr/local/bin/mqtt2pg", `ENTRYPOINT ["/usr/local/bin/mqtt2pg"] (exec form)`,
		"ENTRYPOINT %s", last("ENTRYPOINT"))
	cerr := json.Unmarshal([]byte(last("CMD")), &cmd)
	r.check(cerr == nil && strings.Join(cmd, " ") == "-c /etc/mqtt2pg/mqtt2pg.conf run", `CMD ["-c", "/etc/mqtt2pg/mqtt2pg.conf", "run"]`,
		"CMD %s", last("CMD"))
	r.exit()
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: deploycheck chart|manifests|compose|dockerfile ...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "chart":
		runChart(os.Args[2:])
	case "manifests":
		runManifests(os.Args[2:])
	case "compose":
		runCompose(os.Args[2:])
	case "dockerfile":
		runDockerfile(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "deploycheck: unknown command", os.Args[1])
		os.Exit(2)
	}
}
