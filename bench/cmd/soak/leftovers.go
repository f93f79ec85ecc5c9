package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// leftovers is what the engine holds for this daemon at one point,
// against what it should hold.
type leftovers struct {
	label string
	// Containers labelled with the instance; expected: the apps' replicas.
	containers, containersWant int
	notRunning                 int
	// Images labelled with the instance; expected: those of the kept
	// releases (see keptImages).
	images, imagesWant int
	imagesExtra        []string
	imagesMissing      []string
	// Untagged images descended from this run's first layer that no kept
	// image needs (intermediate layers of failed builds, parents of pruned
	// images).
	orphans []string
	// Networks made by this daemon (labelled or named after the instance).
	networks []string
	// Networks made during the run that are not marked as this daemon's
	// (the shared default network, or another user's).
	otherNetworks []string
	networksMax   int // one per app and one shared, at most; none once destroyed
	destroyed     bool
}

func (l leftovers) ok() bool {
	return l.containers == l.containersWant && l.notRunning == 0 && len(l.imagesExtra) == 0 &&
		len(l.imagesMissing) == 0 && len(l.orphans) == 0 && len(l.networks) <= l.networksMax
}

// release is the part of the releases API the check reads.
type release struct {
	Version int    `json:"version"`
	ImageID string `json:"image_id"`
	Status  string `json:"status"`
}

// keptImages are the images the releases of an app (oldest first) need:
// the active release's and those of the newest `retain` releases as of the
// last successful deploy (plat prunes after each one), and the images of
// the failed releases since (a failed health check leaves its image until
// the next successful deploy prunes it).
func keptImages(rels []release, retain, active int) map[string]bool {
	lastOK := -1
	for i, r := range rels {
		if r.Status == "active" || r.Status == "superseded" {
			lastOK = i
		}
	}
	kept := map[string]bool{}
	for i, r := range rels {
		if r.ImageID != "" && (i >= lastOK+1-retain || r.Version == active) {
			kept[r.ImageID] = true
		}
	}
	return kept
}

func (s *soak) checkLeftovers(label string, destroyed bool) (leftovers, error) {
	l := leftovers{label: label, destroyed: destroyed}
	lbl := "label=plat.instance=" + s.d.Instance

	states, _ := output("docker", "ps", "-a", "--filter", lbl, "--format", "{{.State}}")
	for _, st := range strings.Fields(states) {
		l.containers++
		if st != "running" {
			l.notRunning++
		}
	}

	want := map[string]bool{}
	if !destroyed {
		l.networksMax = len(s.apps) + 1
		for _, a := range s.apps {
			st, err := s.appState(a.name)
			if err != nil {
				return l, err
			}
			l.containersWant += st.Replicas
			out, err := s.d.API(http.MethodGet, "/api/apps/"+a.name+"/releases", "")
			if err != nil {
				return l, err
			}
			var rels []release // oldest first
			if err := json.Unmarshal([]byte(out), &rels); err != nil {
				return l, fmt.Errorf("releases of %s: %w", a.name, err)
			}
			for id := range keptImages(rels, s.o.retain, st.Active) {
				want[id] = true
			}
		}
	}
	have := map[string]bool{}
	ids, _ := output("docker", "images", "-q", "--no-trunc", "--filter", lbl)
	for _, id := range strings.Fields(ids) {
		have[id] = true
	}
	l.images, l.imagesWant = len(have), len(want)
	for id := range have {
		if !want[id] {
			l.imagesExtra = append(l.imagesExtra, short(id))
		}
	}
	for id := range want {
		if !have[id] {
			l.imagesMissing = append(l.imagesMissing, short(id))
		}
	}

	orphans, err := s.orphanImages(have)
	if err != nil {
		return l, err
	}
	l.orphans = orphans
	l.networks, l.otherNetworks = s.newNetworks()
	return l, nil
}

// orphanImages finds images descended from this run's first layer (the
// image of `COPY soak-id`, unique to the run) that neither a labelled image
// nor its ancestors are.
func (s *soak) orphanImages(labelled map[string]bool) ([]string, error) {
	all, err := output("docker", "images", "-a", "-q", "--no-trunc")
	if err != nil {
		return nil, err
	}
	ids := slices.Compact(slices.Sorted(slices.Values(strings.Fields(all))))
	if len(ids) == 0 {
		return nil, nil
	}
	out, err := output("docker", append([]string{"image", "inspect", "--format", "{{.Id}} {{.Parent}}"}, ids...)...)
	if err != nil {
		return nil, err
	}
	parent := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 {
			parent[f[0]] = f[1]
		} else if len(f) == 1 {
			parent[f[0]] = ""
		}
	}
	top := func(id string) string {
		for parent[id] != "" {
			id = parent[id]
		}
		return id
	}
	// The roots are known from the labelled images; remember them for the
	// check after apps:destroy, when none is left.
	if s.roots == nil {
		s.roots = map[string]bool{}
	}
	needed := map[string]bool{}
	for id := range labelled {
		s.roots[top(id)] = true
		for p := id; p != ""; p = parent[p] {
			needed[p] = true
		}
	}
	var orphans []string
	for id := range parent {
		if !needed[id] && s.roots[top(id)] {
			orphans = append(orphans, short(id))
		}
	}
	slices.Sort(orphans)
	return orphans, nil
}

// newNetworks lists the networks made since the soak started: this
// daemon's (labelled with or named after its instance) and others.
func (s *soak) newNetworks() (ours, others []string) {
	for id := range networkIDs() {
		if s.netsBefore[id] {
			continue
		}
		out, err := output("docker", "network", "inspect", "--format", `{{.Name}} {{index .Labels "plat.instance"}}`, id)
		if err != nil {
			continue // removed meanwhile
		}
		f := strings.Fields(out)
		if len(f) == 0 {
			continue
		}
		if strings.Contains(f[0], s.d.Instance) || (len(f) > 1 && f[1] == s.d.Instance) {
			ours = append(ours, f[0])
		} else {
			others = append(others, f[0])
		}
	}
	slices.Sort(ours)
	slices.Sort(others)
	return ours, others
}

// checkFiles lists, after the daemon stopped, the temp files it left in its
// TMPDIR and the temporary files, git quarantine directories and stale
// locks in its data dir.
func (s *soak) checkFiles() (tmp, data []string) {
	entries, _ := os.ReadDir(s.tmp)
	for _, e := range entries {
		tmp = append(tmp, e.Name())
	}
	_ = filepath.WalkDir(s.d.Data, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		name := e.Name()
		if strings.HasPrefix(name, "incoming-") || strings.HasPrefix(name, "tmp_") || strings.HasPrefix(name, "tmp-") ||
			strings.HasSuffix(name, ".tmp") || strings.HasSuffix(name, ".lock") || strings.HasPrefix(name, ".config-") {
			rel, _ := filepath.Rel(s.d.Data, path)
			data = append(data, rel)
			if e.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	// Destroyed apps take their repositories with them.
	repos, _ := os.ReadDir(filepath.Join(s.d.Data, "repos"))
	for _, r := range repos {
		data = append(data, filepath.Join("repos", r.Name()))
	}
	return tmp, data
}

// cleanEngine removes what the run left in the engine: the instance's
// containers and images, and the untagged layers descended from this run's
// first layer (failed builds leave them; see orphanImages).
func (s *soak) cleanEngine() {
	have := map[string]bool{}
	ids, _ := output("docker", "images", "-q", "--no-trunc", "--filter", "label=plat.instance="+s.d.Instance)
	for _, id := range strings.Fields(ids) {
		have[id] = true
	}
	_, _ = s.orphanImages(have) // learns the roots while labelled images exist
	s.d.CleanEngine()
	if orphans, _ := s.orphanImages(nil); len(orphans) > 0 {
		_, _ = output("docker", append([]string{"rmi"}, orphans...)...)
	}
}

func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	return id[:min(12, len(id))]
}

// output runs a command and returns its standard output.
func output(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, ee.Stderr)
		}
		return string(out), fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return string(out), nil
}
