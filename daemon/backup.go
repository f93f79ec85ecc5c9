package daemon

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/plat-paas/plat/store"
)

// A backup is one tar.gz: manifest.json first, then the store (plat.db), the
// local CA (ca/), the certificates (certs/) and one git bundle per app
// (repos/<app>.bundle). Images are not in it: restore rebuilds them.
const (
	backupFormat  = 1
	manifestEntry = "manifest.json"
	storeEntry    = "plat.db"
	reposEntry    = "repos"
	bundleSuffix  = ".bundle"
	// keepRefPrefix names, in a bundle, the commit of every release, so a
	// commit no branch reaches any more (a force push) is still in it.
	keepRefPrefix = "refs/plat/keep/"
	// backupCommitWait bounds the wait for an active release's commit to
	// show in its repository: git records a push only after its deploy
	// went live and drained the old version.
	backupCommitWait = 2 * time.Minute
	commitPoll       = 200 * time.Millisecond
)

// backupDirs are the data dir's folders copied as they are; certmagic's
// lock files are left out.
var backupDirs = []string{localCADir, certsDir, sshDir}

const certLocksDir = "locks"

// backupManifest describes a backup; restore reads it first.
type backupManifest struct {
	Format      int         `json:"format"`
	Created     time.Time   `json:"created"`
	PlatVersion string      `json:"plat_version"`
	Apps        []backupApp `json:"apps"`
	// Warnings: what the backup could not hold (say, a commit missing from
	// an app's repository), so the operator learns it now, not at restore.
	Warnings []string `json:"warnings,omitempty"`
}

type backupApp struct {
	Name   string `json:"name"`
	Active int    `json:"active,omitempty"` // the active release, 0 if never deployed
	GitSHA string `json:"git_sha,omitempty"`
	Repo   bool   `json:"repo"` // repos/<name>.bundle is in the backup
}

func (m backupManifest) appNames() []string {
	names := make([]string, len(m.Apps))
	for i, a := range m.Apps {
		names[i] = a.Name
	}
	return names
}

// backupSource is what a backup copies from.
type backupSource struct {
	store   *store.Store
	dataDir string
	// commitWait is how long to wait for an active release's commit to
	// reach its repository (a push still finishing); 0 when no daemon runs.
	commitWait time.Duration
	log        *slog.Logger
}

// writeBackup writes a backup of src to w. The store is copied first, in one
// read transaction; the repositories after it, so every commit the copy
// names is in them (waiting, bounded, for a push that is just finishing).
func writeBackup(ctx context.Context, w io.Writer, src backupSource) (backupManifest, error) {
	tmp, err := os.MkdirTemp("", "plat-backup-")
	if err != nil {
		return backupManifest{}, fmt.Errorf("backup: temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)

	dbPath := filepath.Join(tmp, storeEntry)
	if err := copyStore(src.store, dbPath); err != nil {
		return backupManifest{}, err
	}
	m := backupManifest{Format: backupFormat, Created: time.Now().UTC().Truncate(time.Second), PlatVersion: platVersion()}
	apps, err := snapshotApps(dbPath)
	if err != nil {
		return m, err
	}
	reposDir := filepath.Join(src.dataDir, reposEntry)
	for _, a := range apps {
		ba := backupApp{Name: a.app.Name, Active: a.app.Active, GitSHA: a.activeSHA}
		if a.app.Preview != nil {
			// Its commits are its branch's, in its app's bundle.
			m.Apps = append(m.Apps, ba)
			continue
		}
		bundle := filepath.Join(tmp, a.app.Name+bundleSuffix)
		var want []string
		if a.activeSHA != "" {
			want = []string{a.activeSHA}
		}
		ok, warnings, err := bundleRepo(ctx, filepath.Join(reposDir, a.app.Name+".git"), bundle, want, a.shas, src.commitWait)
		if err != nil {
			return m, fmt.Errorf("backup of %s's repository: %w", a.app.Name, err)
		}
		ba.Repo = ok
		for _, w := range warnings {
			m.Warnings = append(m.Warnings, a.app.Name+": "+w)
		}
		m.Apps = append(m.Apps, ba)
	}
	if src.log != nil {
		for _, w := range m.Warnings {
			src.log.Warn("backup: "+w, "component", "backup")
		}
	}

	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, fmt.Errorf("backup: encode manifest: %w", err)
	}
	if err := addBytes(tw, manifestEntry, manifest, m.Created); err != nil {
		return m, err
	}
	if err := addFile(tw, dbPath, storeEntry); err != nil {
		return m, err
	}
	for _, dir := range backupDirs {
		if err := addDir(tw, filepath.Join(src.dataDir, dir), dir); err != nil {
			return m, err
		}
	}
	for _, a := range m.Apps {
		if a.Repo {
			if err := addFile(tw, filepath.Join(tmp, a.Name+bundleSuffix), reposEntry+"/"+a.Name+bundleSuffix); err != nil {
				return m, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return m, fmt.Errorf("backup: finish archive: %w", err)
	}
	if err := gz.Close(); err != nil {
		return m, fmt.Errorf("backup: finish archive: %w", err)
	}
	return m, nil
}

func copyStore(st *store.Store, path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := st.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("backup: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("backup: write store copy: %w", err)
	}
	return nil
}

// snapshotApp is an app as the store copy has it, with the commits of its
// active release and of all its releases.
type snapshotApp struct {
	app       store.App
	activeSHA string
	shas      []string
}

// snapshotApps reads the apps from the store copy at path, so the list
// matches the copy exactly.
func snapshotApps(path string) ([]snapshotApp, error) {
	st, err := store.Open(path)
	if err != nil {
		return nil, fmt.Errorf("backup: open store copy: %w", err)
	}
	defer st.Close()
	apps, err := st.ListApps()
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	out := make([]snapshotApp, 0, len(apps))
	for _, a := range apps {
		rels, err := st.ListReleases(a.Name)
		if err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
		sa := snapshotApp{app: a}
		for _, r := range rels {
			if r.GitSHA == "" || !isFullSHA(r.GitSHA) {
				continue
			}
			if r.Version == a.Active {
				sa.activeSHA = r.GitSHA
			}
			if !slices.Contains(sa.shas, r.GitSHA) {
				sa.shas = append(sa.shas, r.GitSHA)
			}
		}
		out = append(out, sa)
	}
	return out, nil
}

// bundleRepo writes a git bundle of the bare repository repo to out, with
// all its refs plus one ref per commit in keep that it has. It waits up to
// wait for each commit in want to appear (a push that is finishing). ok is
// false when there is nothing to bundle (no repository, or no commit yet).
// It never writes to repo: the refs go into a throwaway repository that
// borrows repo's objects.
func bundleRepo(ctx context.Context, repo, out string, want, keep []string, wait time.Duration) (ok bool, warnings []string, err error) {
	if _, err := os.Stat(filepath.Join(repo, "HEAD")); err != nil {
		if len(want) > 0 {
			warnings = append(warnings, "no git repository, so its image cannot be rebuilt after a restore")
		}
		return false, warnings, nil
	}
	deadline := time.Now().Add(wait)
	for _, sha := range want {
		for !hasCommit(ctx, repo, sha) {
			if time.Now().After(deadline) {
				warnings = append(warnings, fmt.Sprintf("the active release's commit %s is not in the repository, so its image cannot be rebuilt after a restore", sha))
				break
			}
			select {
			case <-ctx.Done():
				return false, nil, ctx.Err()
			case <-time.After(commitPoll):
			}
		}
	}
	refs, err := gitOutput(ctx, repo, "for-each-ref", "--format=%(objectname) %(refname)")
	if err != nil {
		return false, nil, err
	}
	seen := map[string]bool{}
	var update strings.Builder
	for line := range strings.Lines(refs) {
		sha, ref, found := strings.Cut(strings.TrimSpace(line), " ")
		if found && !seen[ref] {
			seen[ref] = true
			fmt.Fprintf(&update, "create %s %s\n", ref, sha)
		}
	}
	for _, sha := range keep {
		if ref := keepRefPrefix + sha; !seen[ref] && hasCommit(ctx, repo, sha) {
			seen[ref] = true
			fmt.Fprintf(&update, "create %s %s\n", ref, sha)
		}
	}
	if len(seen) == 0 {
		return false, warnings, nil // created, never pushed
	}
	objects, err := filepath.Abs(filepath.Join(repo, "objects"))
	if err != nil {
		return false, nil, err
	}
	tmpRepo := out + ".git"
	defer os.RemoveAll(tmpRepo)
	if _, err := runGit(ctx, "", nil, "init", "--bare", "--quiet", tmpRepo); err != nil {
		return false, nil, err
	}
	if err := os.WriteFile(filepath.Join(tmpRepo, "objects", "info", "alternates"), []byte(objects+"\n"), 0o600); err != nil {
		return false, nil, fmt.Errorf("borrow objects: %w", err)
	}
	if _, err := runGit(ctx, tmpRepo, strings.NewReader(update.String()), "update-ref", "--stdin"); err != nil {
		return false, nil, err
	}
	if _, err := runGit(ctx, tmpRepo, nil, "bundle", "create", "--quiet", out, "--all"); err != nil {
		return false, nil, err
	}
	return true, warnings, nil
}

// hasCommit reports whether repo can read commit sha (a push still in
// pre-receive keeps its objects in quarantine, invisible to others).
func hasCommit(ctx context.Context, repo, sha string) bool {
	_, err := gitOutput(ctx, repo, "cat-file", "-e", sha+"^{commit}")
	return err == nil
}

func gitOutput(ctx context.Context, gitDir string, args ...string) (string, error) {
	return runGit(ctx, gitDir, nil, args...)
}

// runGit runs git on the bare repository gitDir ("" for none) and returns
// its output; the error carries git's message.
func runGit(ctx context.Context, gitDir string, stdin io.Reader, args ...string) (string, error) {
	sub := args[0]
	if gitDir != "" {
		args = append([]string{"--git-dir", gitDir}, args...)
	}
	cmd := exec.CommandContext(ctx, "git", args...)
	// Nothing from the caller's environment may point git elsewhere.
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0")
	cmd.Stdin = stdin
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", sub, err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

func isFullSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	return strings.Trim(s, "0123456789abcdef") == ""
}

func addBytes(tw *tar.Writer, name string, data []byte, mod time.Time) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), ModTime: mod, Typeflag: tar.TypeReg}); err != nil {
		return fmt.Errorf("backup: write %s: %w", name, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("backup: write %s: %w", name, err)
	}
	return nil
}

func addFile(tw *tar.Writer, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: fi.Size(), ModTime: fi.ModTime(), Typeflag: tar.TypeReg}); err != nil {
		return fmt.Errorf("backup: write %s: %w", name, err)
	}
	// A file that changes size meanwhile fails here rather than making a
	// broken archive.
	if _, err := io.CopyN(tw, f, fi.Size()); err != nil {
		return fmt.Errorf("backup: copy %s: %w", name, err)
	}
	return nil
}

// addDir adds the regular files under dir as name/...; a missing dir adds
// nothing.
func addDir(tw *tar.Writer, dir, name string) error {
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if d.IsDir() && name == certsDir && rel == certLocksDir {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		return addFile(tw, path, name+"/"+filepath.ToSlash(rel))
	})
	if err != nil {
		return fmt.Errorf("backup: %s: %w", name, err)
	}
	return nil
}

// platVersion is this binary's version: the module version when built from
// a tag, else the VCS revision.
func platVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "devel-" + rev
}
