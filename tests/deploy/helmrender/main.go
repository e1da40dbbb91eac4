// SPDX-License-Identifier: Apache-2.0

// Command helmrender renders a Helm chart the way `helm template` does, on a machine without helm, from
// Debian's Go packages only (sprig, sigs.k8s.io/yaml, gojsonschema, semver: the libraries Helm itself
// renders with). tests/deploy/helm_check.sh uses it to render deploy/helm/mqtt2pg with its default values
// and with each ci/*.yaml, then checks the result.
//
//	helmrender [-f values.yaml]... [--name R] [--namespace N] [--upgrade] [--kube-version v1.29.0]
//	           [--api-versions group/version,...] [--notes FILE] [--values-out FILE] CHART_DIR
//
// What it does as Helm 3 does:
//   - Chart.yaml is read into the same metadata fields (.Chart.Name, .Version, .AppVersion, ...); apiVersion
//     must be v2 and version SemVer; kubeVersion is checked against --kube-version.
//   - .Values: values.yaml, then every -f file merged over it in order: maps merge deeply, anything else is
//     replaced, and a null deletes the key. Numbers arrive as float64 (Helm reads values through JSON), so a
//     template that prints 1000000 with {{ . }} gets 1e+06 here as it would there.
//   - values.schema.json, if present, validates the merged values (JSON Schema draft-07 through
//     gojsonschema, Helm 3's validator for most of its releases); a failure names each field.
//   - .Release (Name, Namespace, IsInstall, IsUpgrade, Revision, Service "Helm"), .Capabilities
//     (KubeVersion with Version/Major/Minor/GitVersion, APIVersions.Has, HelmVersion), .Template (Name,
//     BasePath), .Files (Get, GetBytes, Lines, Glob, AsConfig, AsSecrets; .helmignore honoured).
//   - Functions: sprig's text functions without env and expandenv, and Helm's include, tpl, required,
//     toYaml, fromYaml, fromYamlArray, toJson, fromJson, fromJsonArray, lookup (always empty: no cluster).
//   - Templates are parsed in Helm's order (deeper paths first, then by name) with missingkey=zero, "<no
//     value>" is removed from the output, files whose name starts with "_" are partials, NOTES.txt is not
//     a manifest (--notes FILE renders it separately, as install does).
//   - Every rendered document must parse as YAML; documents are printed as "---\n# Source: PATH\n...",
//     resources in Helm's install order by kind, then hooks (by weight, then name), tests included.
//
// Not supported (an error, never a silent difference): subcharts and dependencies, --set, toToml, and the
// chartutil.Values methods (.Values.AsMap, .Values.Table, ...). lookup never finds anything, as in
// `helm template` without a cluster.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/semver/v3"
	"github.com/Masterminds/sprig/v3"
	"github.com/xeipuuv/gojsonschema"
	"sigs.k8s.io/yaml"
)

// Maintainer and Dependency mirror Helm's chart.Maintainer and chart.Dependency.
type Maintainer struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	URL   string `json:"url,omitempty"`
}

type Dependency struct {
	Name       string `json:"name"`
	Version    string `json:"version,omitempty"`
	Repository string `json:"repository"`
	Condition  string `json:"condition,omitempty"`
	Alias      string `json:"alias,omitempty"`
}

// Metadata mirrors Helm's chart.Metadata: templates see it as .Chart, with these field names.
type Metadata struct {
	Name         string            `json:"name,omitempty"`
	Home         string            `json:"home,omitempty"`
	Sources      []string          `json:"sources,omitempty"`
	Version      string            `json:"version,omitempty"`
	Description  string            `json:"description,omitempty"`
	Keywords     []string          `json:"keywords,omitempty"`
	Maintainers  []*Maintainer     `json:"maintainers,omitempty"`
	Icon         string            `json:"icon,omitempty"`
	APIVersion   string            `json:"apiVersion,omitempty"`
	Condition    string            `json:"condition,omitempty"`
	Tags         string            `json:"tags,omitempty"`
	AppVersion   string            `json:"appVersion,omitempty"`
	Deprecated   bool              `json:"deprecated,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	KubeVersion  string            `json:"kubeVersion,omitempty"`
	Dependencies []*Dependency     `json:"dependencies,omitempty"`
	Type         string            `json:"type,omitempty"`
}

// KubeVersion, VersionSet, HelmVersion and Capabilities mirror chartutil's: .Capabilities.KubeVersion.Minor,
// .Capabilities.APIVersions.Has "policy/v1", ...
type KubeVersion struct {
	Version string
	Major   string
	Minor   string
}

func (kv KubeVersion) String() string     { return kv.Version }
func (kv KubeVersion) GitVersion() string { return kv.Version }

type VersionSet []string

func (v VersionSet) Has(apiVersion string) bool {
	for _, x := range v {
		if x == apiVersion {
			return true
		}
	}
	return false
}

type HelmVersion struct {
	Version      string
	GitCommit    string
	GitTreeState string
	GoVersion    string
}

type Capabilities struct {
	APIVersions VersionSet
	KubeVersion KubeVersion
	HelmVersion HelmVersion
}

// The built-in API group versions of a current cluster (what `helm template` assumes without one).
var defaultAPIVersions = []string{
	"v1", "admissionregistration.k8s.io/v1", "apiextensions.k8s.io/v1", "apiregistration.k8s.io/v1",
	"apps/v1", "authentication.k8s.io/v1", "authorization.k8s.io/v1", "autoscaling/v1", "autoscaling/v2",
	"batch/v1", "certificates.k8s.io/v1", "coordination.k8s.io/v1", "discovery.k8s.io/v1",
	"events.k8s.io/v1", "flowcontrol.apiserver.k8s.io/v1beta3", "networking.k8s.io/v1", "node.k8s.io/v1",
	"policy/v1", "rbac.authorization.k8s.io/v1", "scheduling.k8s.io/v1", "storage.k8s.io/v1",
}

// Files mirrors Helm's engine files: the chart's non-template files, by path relative to the chart.
type Files map[string][]byte

func (f Files) GetBytes(name string) []byte { return f[name] }
func (f Files) Get(name string) string      { return string(f[name]) }

func (f Files) Lines(name string) []string {
	if f[name] == nil {
		return []string{}
	}
	return strings.Split(string(f[name]), "\n")
}

// Glob matches with path.Match (Helm uses gobwas/glob, which also knows "**").
func (f Files) Glob(pattern string) Files {
	out := Files{}
	for name, data := range f {
		if ok, _ := path.Match(pattern, name); ok {
			out[name] = data
		}
	}
	return out
}

func (f Files) AsConfig() string {
	m := map[string]string{}
	for name, data := range f {
		m[path.Base(name)] = string(data)
	}
	return toYAML(m)
}

func (f Files) AsSecrets() string {
	m := map[string]string{}
	for name, data := range f {
		m[path.Base(name)] = base64.StdEncoding.EncodeToString(data)
	}
	return toYAML(m)
}

type chart struct {
	dir       string
	meta      *Metadata
	values    map[string]interface{}
	schema    []byte
	templates map[string]string // "<chart>/templates/x.yaml" -> text
	files     Files
}

func fatalf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "helmrender: "+format+"\n", args...)
	os.Exit(1)
}

// readValues parses a values file as Helm's chartutil.ReadValues does (YAML through JSON).
func readValues(data []byte) (map[string]interface{}, error) {
	vals := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &vals); err != nil {
		return nil, err
	}
	if vals == nil {
		vals = map[string]interface{}{}
	}
	return vals, nil
}

// helmignore is the subset of .helmignore rules Helm applies: comments, blank lines, "dir/" patterns and
// shell globs matched against the path and the base name; "!" negation is not supported (an error).
type helmignore []string

func readHelmignore(dir string) (helmignore, error) {
	data, err := os.ReadFile(filepath.Join(dir, ".helmignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var rules helmignore
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			return nil, fmt.Errorf(".helmignore: negated rules (%s) are not supported", line)
		}
		rules = append(rules, line)
	}
	return rules, nil
}

func (h helmignore) ignored(rel string, isDir bool) bool {
	for _, rule := range h {
		pattern := strings.TrimSuffix(rule, "/")
		if strings.HasSuffix(rule, "/") && !isDir {
			continue
		}
		for _, candidate := range []string{rel, path.Base(rel)} {
			if ok, _ := path.Match(strings.TrimPrefix(pattern, "/"), candidate); ok {
				return true
			}
		}
	}
	return false
}

func loadChart(dir string) (*chart, error) {
	c := &chart{dir: dir, templates: map[string]string{}, files: Files{}}
	raw, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	c.meta = &Metadata{}
	if err := yaml.UnmarshalStrict(raw, c.meta); err != nil {
		return nil, fmt.Errorf("Chart.yaml: %v", err)
	}
	switch {
	case c.meta.APIVersion != "v2":
		return nil, fmt.Errorf("Chart.yaml: apiVersion %q: only v2 charts are supported", c.meta.APIVersion)
	case c.meta.Name == "":
		return nil, errors.New("Chart.yaml: name is required")
	case len(c.meta.Dependencies) > 0:
		return nil, errors.New("Chart.yaml: dependencies are not supported by this renderer")
	}
	if _, err := semver.StrictNewVersion(c.meta.Version); err != nil {
		return nil, fmt.Errorf("Chart.yaml: version %q is not SemVer 2: %v", c.meta.Version, err)
	}
	if c.meta.Type != "" && c.meta.Type != "application" {
		return nil, fmt.Errorf("Chart.yaml: type %q is not supported", c.meta.Type)
	}
	if raw, err = os.ReadFile(filepath.Join(dir, "values.yaml")); err == nil {
		if c.values, err = readValues(raw); err != nil {
			return nil, fmt.Errorf("values.yaml: %v", err)
		}
	} else if errors.Is(err, fs.ErrNotExist) {
		c.values = map[string]interface{}{}
	} else {
		return nil, err
	}
	if raw, err = os.ReadFile(filepath.Join(dir, "values.schema.json")); err == nil {
		c.schema = raw
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	ignore, err := readHelmignore(dir)
	if err != nil {
		return nil, err
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if ignore.ignored(rel, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if rel == "charts" {
				return errors.New("charts/: subcharts are not supported by this renderer")
			}
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(rel, "templates/"):
			c.templates[path.Join(c.meta.Name, rel)] = string(data)
		case rel == "Chart.yaml" || rel == "values.yaml" || rel == "values.schema.json" || rel == ".helmignore":
		case rel == "requirements.yaml" || rel == "Chart.lock":
			return fmt.Errorf("%s: dependencies are not supported by this renderer", rel)
		default:
			c.files[rel] = data
		}
		return nil
	})
	return c, err
}

func copyValue(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		m := make(map[string]interface{}, len(t))
		for k, x := range t {
			m[k] = copyValue(x)
		}
		return m
	case []interface{}:
		s := make([]interface{}, len(t))
		for i, x := range t {
			s[i] = copyValue(x)
		}
		return s
	}
	return v
}

// mergeMaps merges the -f files in order, as Helm's values.MergeValues: maps deeply, the rest replaced.
func mergeMaps(dst, src map[string]interface{}) {
	for k, v := range src {
		if sm, ok := v.(map[string]interface{}); ok {
			if dm, ok := dst[k].(map[string]interface{}); ok {
				mergeMaps(dm, sm)
				continue
			}
		}
		dst[k] = copyValue(v)
	}
}

// coalesce lays the user's values over the chart's defaults as chartutil.CoalesceValues does: a user null
// deletes the key, maps are coalesced recursively, anything else of the user's wins.
func coalesce(user, defaults map[string]interface{}) map[string]interface{} {
	out := map[string]interface{}{}
	for k, dv := range defaults {
		uv, set := user[k]
		switch {
		case !set:
			out[k] = copyValue(dv)
		case uv == nil:
			// deleted
		default:
			um, uok := uv.(map[string]interface{})
			dm, dok := dv.(map[string]interface{})
			if uok && dok {
				out[k] = coalesce(um, dm)
			} else {
				if dok && !uok {
					fmt.Fprintf(os.Stderr, "helmrender: warning: cannot overwrite table with non table for %s\n", k)
				}
				out[k] = copyValue(uv)
			}
		}
	}
	for k, uv := range user {
		if _, seen := defaults[k]; !seen && uv != nil {
			if um, ok := uv.(map[string]interface{}); ok {
				out[k] = coalesce(um, map[string]interface{}{})
			} else {
				out[k] = copyValue(uv)
			}
		}
	}
	return out
}

func validateSchema(chartName string, schema []byte, values map[string]interface{}) error {
	doc, err := json.Marshal(values)
	if err != nil {
		return err
	}
	result, err := gojsonschema.Validate(gojsonschema.NewBytesLoader(schema), gojsonschema.NewBytesLoader(doc))
	if err != nil {
		return fmt.Errorf("values.schema.json: %v", err)
	}
	if result.Valid() {
		return nil
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "values don't meet the specifications of the schema(s) in the following chart(s):\n%s:\n", chartName)
	for _, e := range result.Errors() {
		fmt.Fprintf(&sb, "- %s\n", e)
	}
	return errors.New(strings.TrimSuffix(sb.String(), "\n"))
}

// Helm's conversion functions (pkg/engine/funcs.go): they swallow errors, as in Helm.
func toYAML(v interface{}) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func fromYAML(str string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := yaml.Unmarshal([]byte(str), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromYAMLArray(str string) []interface{} {
	a := []interface{}{}
	if err := yaml.Unmarshal([]byte(str), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

func fromJSON(str string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(str), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromJSONArray(str string) []interface{} {
	a := []interface{}{}
	if err := json.Unmarshal([]byte(str), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

const recursionMax = 1000

// engine renders one set of templates; include and tpl are bound to it, as in Helm's Engine.initFunMap.
type engine struct {
	references map[string]string // every template of the chart, for tpl
}

// parse builds a template set from tpls (parsed first) and the references not already in it.
func (e *engine) parse(tpls map[string]string) (*template.Template, error) {
	t := template.New("gotpl").Option("missingkey=zero")
	included := map[string]int{}
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	funcs["toYaml"] = toYAML
	funcs["fromYaml"] = fromYAML
	funcs["fromYamlArray"] = fromYAMLArray
	funcs["toJson"] = toJSON
	funcs["fromJson"] = fromJSON
	funcs["fromJsonArray"] = fromJSONArray
	funcs["lookup"] = func(apiVersion, kind, namespace, name string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	funcs["include"] = func(name string, data interface{}) (string, error) {
		if included[name] > recursionMax {
			return "", fmt.Errorf("rendering template has a nested reference name: %s", name)
		}
		included[name]++
		defer func() { included[name]-- }()
		var buf strings.Builder
		err := t.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
	funcs["tpl"] = func(text string, vals map[string]interface{}) (string, error) {
		tm, _ := vals["Template"].(map[string]interface{})
		name, _ := tm["Name"].(string)
		if name == "" {
			return "", fmt.Errorf("cannot retrieve Template.Name from values inside tpl function: %s", text)
		}
		inner, err := e.parse(map[string]string{name: text})
		if err != nil {
			return "", fmt.Errorf("error during tpl function execution for %q: %v", text, err)
		}
		var buf strings.Builder
		if err := inner.ExecuteTemplate(&buf, name, vals); err != nil {
			return "", fmt.Errorf("error during tpl function execution for %q: %v", text, err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	funcs["required"] = func(warn string, val interface{}) (interface{}, error) {
		if val == nil {
			return val, errors.New(warnStart + warn + warnEnd)
		}
		if s, ok := val.(string); ok && s == "" {
			return val, errors.New(warnStart + warn + warnEnd)
		}
		return val, nil
	}
	t.Funcs(funcs)
	for _, name := range sortTemplates(tpls) {
		if _, err := t.New(name).Parse(tpls[name]); err != nil {
			return nil, parseError(name, err)
		}
	}
	for _, name := range sortTemplates(e.references) {
		if t.Lookup(name) == nil {
			if _, err := t.New(name).Parse(e.references[name]); err != nil {
				return nil, parseError(name, err)
			}
		}
	}
	return t, nil
}

// required's message is marked so that execError can show it alone, as Helm does.
const (
	warnStart = "HELM_ERR_START"
	warnEnd   = "HELM_ERR_END"
)

var warnRegex = regexp.MustCompile(warnStart + `(.*)` + warnEnd)

// execError and parseError shape template errors as Helm's cleanupExecError and cleanupParseError do:
// "execution error at (chart/templates/x.yaml:8:15): message of required", "parse error at (...): ...".
func execError(name string, err error) error {
	if _, ok := err.(template.ExecError); !ok {
		return err
	}
	tokens := strings.SplitN(err.Error(), ": ", 3)
	if len(tokens) != 3 {
		return fmt.Errorf("execution error in (%s): %s", name, err)
	}
	if parts := warnRegex.FindStringSubmatch(tokens[2]); len(parts) >= 2 {
		return fmt.Errorf("execution error at (%s): %s", tokens[1], parts[1])
	}
	return err
}

func parseError(name string, err error) error {
	tokens := strings.Split(err.Error(), ": ")
	if len(tokens) == 1 {
		return fmt.Errorf("parse error in (%s): %s", name, err)
	}
	return fmt.Errorf("parse error at (%s): %s", tokens[1], tokens[len(tokens)-1])
}

// sortTemplates orders names as Helm parses them: more path elements first, then by name.
func sortTemplates(tpls map[string]string) []string {
	keys := make([]string, 0, len(tpls))
	for k := range tpls {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		ci, cj := strings.Count(keys[i], "/"), strings.Count(keys[j], "/")
		if ci != cj {
			return ci > cj
		}
		return keys[i] > keys[j]
	})
	return keys
}

// Helm's install order (pkg/releaseutil/kind_sorter.go); other kinds follow, by kind name.
var installOrder = []string{
	"PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
	"PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass",
	"PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole",
	"ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding",
	"RoleBindingList", "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
	"HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService",
}

type manifest struct {
	source string
	doc    string
	kind   string
	name   string
	hook   bool
	weight int
}

var separator = regexp.MustCompile(`(?:^|\s*\n)---\s*`)

// splitManifests cuts one rendered file into its YAML documents as releaseutil.SplitManifests does.
func splitManifests(text string) []string {
	var docs []string
	for _, d := range separator.Split("\n"+text, -1) {
		if d = strings.TrimSpace(d); d != "" {
			docs = append(docs, d)
		}
	}
	return docs
}

type head struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   *struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
}

func orderOf(kind string) int {
	for i, k := range installOrder {
		if k == kind {
			return i
		}
	}
	return len(installOrder)
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	var valueFiles stringList
	release := flag.String("name", "release-name", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	upgrade := flag.Bool("upgrade", false, "render as an upgrade (.Release.IsUpgrade) instead of an install")
	kubeVersion := flag.String("kube-version", "v1.29.0", "Kubernetes version for .Capabilities")
	apiVersions := flag.String("api-versions", "", "extra API versions for .Capabilities.APIVersions, comma-separated")
	notesOut := flag.String("notes", "", "also render templates/NOTES.txt into this file")
	valuesOut := flag.String("values-out", "", "write the merged values as JSON into this file")
	flag.Var(&valueFiles, "f", "values file (repeatable; later files win)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: helmrender [-f values.yaml]... [flags] CHART_DIR")
		flag.PrintDefaults()
		os.Exit(2)
	}
	c, err := loadChart(flag.Arg(0))
	if err != nil {
		fatalf("loading chart: %v", err)
	}

	kv, err := semver.NewVersion(*kubeVersion)
	if err != nil {
		fatalf("--kube-version %q: %v", *kubeVersion, err)
	}
	if c.meta.KubeVersion != "" {
		constraint, err := semver.NewConstraint(c.meta.KubeVersion)
		if err != nil {
			fatalf("Chart.yaml: kubeVersion %q: %v", c.meta.KubeVersion, err)
		}
		if !constraint.Check(kv) {
			fatalf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", c.meta.KubeVersion, *kubeVersion)
		}
	}

	user := map[string]interface{}{}
	for _, f := range valueFiles {
		raw, err := os.ReadFile(f)
		if err != nil {
			fatalf("%v", err)
		}
		vals, err := readValues(raw)
		if err != nil {
			fatalf("%s: %v", f, err)
		}
		mergeMaps(user, vals)
	}
	values := coalesce(user, c.values)
	if c.schema != nil {
		if err := validateSchema(c.meta.Name, c.schema, values); err != nil {
			fatalf("%v", err)
		}
	}
	if *valuesOut != "" {
		data, _ := json.MarshalIndent(values, "", "  ")
		if err := os.WriteFile(*valuesOut, append(data, '\n'), 0o644); err != nil {
			fatalf("%v", err)
		}
	}

	apis := VersionSet(append([]string{}, defaultAPIVersions...))
	for _, a := range strings.Split(*apiVersions, ",") {
		if a = strings.TrimSpace(a); a != "" {
			apis = append(apis, a)
		}
	}
	top := map[string]interface{}{
		"Values": values,
		"Chart":  c.meta,
		"Release": map[string]interface{}{
			"Name": *release, "Namespace": *namespace, "IsInstall": !*upgrade, "IsUpgrade": *upgrade,
			"Revision": 1, "Service": "Helm",
		},
		"Capabilities": Capabilities{
			APIVersions: apis,
			KubeVersion: KubeVersion{Version: "v" + kv.String(), Major: strconv.FormatUint(kv.Major(), 10),
				Minor: strconv.FormatUint(kv.Minor(), 10)},
			HelmVersion: HelmVersion{Version: "v3.14.0+helmrender"},
		},
		"Files": c.files,
	}

	e := &engine{references: c.templates}
	t, err := e.parse(c.templates)
	if err != nil {
		fatalf("%v", err)
	}
	basePath := path.Join(c.meta.Name, "templates")
	render := func(name string) (string, error) {
		vals := map[string]interface{}{}
		for k, v := range top {
			vals[k] = v
		}
		vals["Template"] = map[string]interface{}{"Name": name, "BasePath": basePath}
		var buf strings.Builder
		if err := t.ExecuteTemplate(&buf, name, vals); err != nil {
			return "", execError(name, err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}

	notesName := path.Join(basePath, "NOTES.txt")
	var manifests []manifest
	for _, name := range sortTemplates(c.templates) {
		if strings.HasPrefix(path.Base(name), "_") || name == notesName {
			continue
		}
		out, err := render(name)
		if err != nil {
			fatalf("%v", err)
		}
		for _, doc := range splitManifests(out) {
			var h head
			if err := yaml.Unmarshal([]byte(doc), &h); err != nil {
				fatalf("YAML parse error on %s: %v", name, err)
			}
			if h.Kind == "" && h.APIVersion == "" && h.Metadata == nil {
				continue // a document of comments only
			}
			m := manifest{source: name, doc: doc, kind: h.Kind}
			if h.Metadata != nil {
				m.name = h.Metadata.Name
				if hook, ok := h.Metadata.Annotations["helm.sh/hook"]; ok && hook != "" {
					m.hook = true
					m.weight, _ = strconv.Atoi(h.Metadata.Annotations["helm.sh/hook-weight"])
				}
			}
			manifests = append(manifests, m)
		}
	}
	sort.SliceStable(manifests, func(i, j int) bool {
		a, b := manifests[i], manifests[j]
		if a.hook != b.hook {
			return !a.hook
		}
		if a.hook {
			if a.weight != b.weight {
				return a.weight < b.weight
			}
			return a.name < b.name
		}
		if oa, ob := orderOf(a.kind), orderOf(b.kind); oa != ob {
			return oa < ob
		}
		if a.kind != b.kind {
			return a.kind < b.kind
		}
		return a.source < b.source
	})
	var out bytes.Buffer
	for _, m := range manifests {
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", m.source, m.doc)
	}
	os.Stdout.Write(out.Bytes())

	if *notesOut != "" {
		notes := ""
		if _, ok := c.templates[notesName]; ok {
			if notes, err = render(notesName); err != nil {
				fatalf("%v", err)
			}
		}
		if err := os.WriteFile(*notesOut, []byte(notes), 0o644); err != nil {
			fatalf("%v", err)
		}
	}
	fmt.Fprintf(os.Stderr, "helmrender: %d document(s), sha256 %x\n", len(manifests), sha256.Sum256(out.Bytes()))
}
