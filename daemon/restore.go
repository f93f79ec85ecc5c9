package daemon

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/plat-paas/plat/deploy"
	"github.com/plat-paas/plat/store"
)

// restoredNames are what a restore puts in the data dir, replacing (with
// --force) what was there.
var restoredNames = []string{storeEntry, localCADir, certsDir, sshDir, reposEntry}

// socketProbeTimeout bounds the check that no daemon uses the data dir.
const socketProbeTimeout = time.Second

// restoreMain runs `plat daemon restore FILE`.
func restoreMain(args []string) int {
	return fileCommand(args, fileCommandSpec{
		name:    "plat daemon restore",
		dataDoc: "the data directory to restore into (empty or new)",
		force:   "restore into a data dir that is not empty, replacing its store, CA, certificates and repositories",
		usage:   "usage: plat daemon restore FILE [--data DIR] [--force]\n\nRestores a backup made by `plat daemon backup` into a data dir, with the daemon stopped.\nWhen the daemon starts, it rebuilds every app's image from its git commit.",
		run:     runRestore,
	})
}

// runRestore restores the backup file into dataDir. Everything is unpacked
// and checked in a staging dir first; only then does it move into place, so
// a damaged or truncated file changes nothing.
func runRestore(ctx context.Context, file, dataDir string, force bool, out io.Writer) (err error) {
	if _, err := os.Stat(file); err != nil {
		return fmt.Errorf("read backup: %w", err)
	}
	if daemonAnswers(filepath.Join(dataDir, socketName)) {
		return fmt.Errorf("a plat daemon is running on %s: stop it, then restore", dataDir)
	}
	created := false
	entries, err := os.ReadDir(dataDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return fmt.Errorf("create data dir: %w", err)
		}
		created = true
	case err != nil:
		return fmt.Errorf("read data dir: %w", err)
	case len(entries) > 0 && !force:
		return fmt.Errorf("%s is not empty (it holds %s): restore into a new or empty data dir, or pass --force to replace its store, CA, certificates and repositories", dataDir, entryNames(entries))
	}
	stage, err := os.MkdirTemp(dataDir, ".restore-")
	if err != nil {
		return fmt.Errorf("staging dir: %w", err)
	}
	defer func() {
		os.RemoveAll(stage)
		if err != nil {
			if created {
				os.Remove(dataDir)
			}
			err = fmt.Errorf("%w\nplat: nothing was changed in %s", err, dataDir)
		}
	}()

	m, err := extractBackup(file, stage)
	if err != nil {
		return err
	}
	if err := checkRestoredStore(file, stage, m); err != nil {
		return err
	}
	warnings, err := unbundleRepos(ctx, stage, m)
	if err != nil {
		return err
	}
	if err := notInUse(dataDir); err != nil {
		return err
	}
	if err := install(stage, dataDir); err != nil {
		return err
	}
	syncDir(dataDir)

	fmt.Fprintf(out, "Restored %d %s%s from %s (made %s by plat %s) into %s\n",
		len(m.Apps), plural(len(m.Apps), "app", "apps"), formatApps(m.appNames()), file,
		m.Created.Format(time.RFC3339), m.PlatVersion, dataDir)
	for _, w := range slices.Concat(m.Warnings, warnings) {
		fmt.Fprintf(out, "warning: %s\n", w)
	}
	fmt.Fprintf(out, "Start the daemon with --data %s: it rebuilds each app's image from its git commit, and the app serves again.\n", dataDir)
	return nil
}

// notInUse checks that no daemon holds the store in dataDir, even one whose
// socket is gone: bbolt's file lock tells.
func notInUse(dataDir string) error {
	path := filepath.Join(dataDir, storeEntry)
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	st, err := store.Open(path)
	if err != nil {
		return fmt.Errorf("cannot restore over %s: %w", dataDir, err)
	}
	return st.Close()
}

// daemonAnswers reports whether something accepts connections on socket.
func daemonAnswers(socket string) bool {
	c, err := net.DialTimeout("unix", socket, socketProbeTimeout)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func entryNames(entries []os.DirEntry) string {
	var names []string
	for i, e := range entries {
		if i == 4 {
			names = append(names, "...")
			break
		}
		names = append(names, e.Name())
	}
	return strings.Join(names, ", ")
}

// extractBackup unpacks the backup into stage, refusing any entry a plat
// backup does not have.
func extractBackup(file, stage string) (backupManifest, error) {
	m, err := readBackup(file, func(hdr *tar.Header, r io.Reader) error {
		rel, err := backupEntryPath(hdr.Name)
		if err == nil && hdr.Typeflag != tar.TypeReg {
			err = fmt.Errorf("entry %q is not a regular file", hdr.Name)
		}
		if err != nil {
			return fmt.Errorf("%s is not a plat backup: %w", file, err)
		}
		dst := filepath.Join(stage, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return fmt.Errorf("unpack %s: %w", rel, err)
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("unpack %s: %w", rel, err)
		}
		_, err = io.Copy(f, r)
		if cerr := f.Close(); err == nil && cerr != nil {
			return fmt.Errorf("unpack %s: %w", rel, cerr)
		}
		if err != nil {
			return damaged(file, err)
		}
		return nil
	})
	if err != nil {
		return m, err
	}
	if _, err := os.Stat(filepath.Join(stage, storeEntry)); err != nil {
		return m, fmt.Errorf("%s is not a complete plat backup: it has no %s", file, storeEntry)
	}
	for _, a := range m.Apps {
		if a.Repo {
			if _, err := os.Stat(filepath.Join(stage, reposEntry, a.Name+bundleSuffix)); err != nil {
				return m, fmt.Errorf("%s is not a complete plat backup: the repository of %s is missing", file, a.Name)
			}
		}
	}
	return m, nil
}

// backupEntryPath checks an archive entry's name against what a backup
// holds (plat.db, ca/..., certs/..., repos/<app>.bundle) and returns it as
// a clean relative path; anything else (.., absolute paths, unknown files)
// is an error, so a hostile archive cannot write outside the staging dir.
func backupEntryPath(name string) (string, error) {
	bad := fmt.Errorf("unexpected entry %q", name)
	if name == "" || strings.Contains(name, `\`) || path.IsAbs(name) || path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") {
		return "", bad
	}
	top, rest, _ := strings.Cut(name, "/")
	switch top {
	case storeEntry:
		if rest == "" && !strings.Contains(name, "/") {
			return name, nil
		}
	case localCADir, certsDir, sshDir:
		if rest != "" {
			return name, nil
		}
	case reposEntry:
		app, ok := strings.CutSuffix(rest, bundleSuffix)
		if ok && !strings.Contains(app, "/") && deploy.ValidateAppName(app) == nil {
			return name, nil
		}
	}
	return "", bad
}

// checkRestoredStore opens the unpacked store, checks every page and that
// it holds the apps the manifest lists.
func checkRestoredStore(file, stage string, m backupManifest) error {
	st, err := store.Open(filepath.Join(stage, storeEntry))
	if err != nil {
		return fmt.Errorf("%s holds a damaged store: %w", file, err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		return fmt.Errorf("%s holds a damaged store: %w", file, err)
	}
	apps, err := st.ListApps()
	if err != nil {
		return fmt.Errorf("%s holds a damaged store: %w", file, err)
	}
	var names []string
	for _, a := range apps {
		names = append(names, a.Name)
	}
	if want := m.appNames(); !slices.Equal(names, want) {
		return fmt.Errorf("%s is inconsistent: its store holds apps %v, its manifest lists %v", file, names, want)
	}
	return nil
}

// unbundleRepos turns each app's bundle into its bare repository.
func unbundleRepos(ctx context.Context, stage string, m backupManifest) (warnings []string, err error) {
	dir := filepath.Join(stage, reposEntry)
	for _, a := range m.Apps {
		if !a.Repo {
			continue
		}
		bundle := filepath.Join(dir, a.Name+bundleSuffix)
		repo := filepath.Join(dir, a.Name+".git")
		if _, err := runGit(ctx, "", nil, "init", "--bare", "--quiet", "--initial-branch=main", repo); err != nil {
			return nil, fmt.Errorf("restore the repository of %s: %w", a.Name, err)
		}
		if _, err := runGit(ctx, repo, nil, "fetch", "--quiet", "--update-head-ok", bundle, "refs/*:refs/*"); err != nil {
			return nil, fmt.Errorf("restore the repository of %s (the backup may be damaged): %w", a.Name, err)
		}
		if err := os.Remove(bundle); err != nil {
			return nil, err
		}
		if a.GitSHA != "" && !hasCommit(ctx, repo, a.GitSHA) {
			warnings = append(warnings, fmt.Sprintf("%s: the active release's commit %s is not in the restored repository; push the app again", a.Name, a.GitSHA))
		}
	}
	return warnings, nil
}

// install moves the staged files into dataDir, moving what they replace
// into the stage (removed with it). On failure it puts everything back.
func install(stage, dataDir string) error {
	old := filepath.Join(stage, ".replaced")
	if err := os.Mkdir(old, 0o700); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	var undo []func()
	rollback := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	for _, name := range restoredNames {
		cur := filepath.Join(dataDir, name)
		if _, err := os.Lstat(cur); err != nil {
			continue
		}
		aside := filepath.Join(old, name)
		if err := os.Rename(cur, aside); err != nil {
			rollback()
			return fmt.Errorf("install: move %s aside: %w", cur, err)
		}
		undo = append(undo, func() { os.Rename(aside, cur) })
	}
	for _, name := range restoredNames {
		src := filepath.Join(stage, name)
		if _, err := os.Lstat(src); err != nil {
			continue
		}
		dst := filepath.Join(dataDir, name)
		if err := os.Rename(src, dst); err != nil {
			rollback()
			return fmt.Errorf("install %s: %w", dst, err)
		}
		undo = append(undo, func() { os.Rename(dst, src) })
	}
	return nil
}

// archive streams `git archive` of app's commit sha: the source a missing
// image is rebuilt from (deploy.SourceFunc).
func (r *repos) archive(ctx context.Context, app, sha string) (io.ReadCloser, error) {
	// A preview's commits are in its app's repository (its branch).
	if parent, _, ok := deploy.SplitPreviewName(app); ok {
		app = parent
	}
	if _, err := os.Stat(filepath.Join(r.path(app), "HEAD")); err != nil {
		return nil, fmt.Errorf("no git repository for %s: %w", app, err)
	}
	cmd := exec.CommandContext(ctx, "git", "--git-dir", r.path(app), "archive", "--format=tar", sha)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cr := &cmdReader{ReadCloser: stdout, cmd: cmd}
	cmd.Stderr = &cr.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("git archive: %w", err)
	}
	return cr, nil
}

// cmdReader is a command's output; Close waits for the command and reports
// its failure.
type cmdReader struct {
	io.ReadCloser
	cmd    *exec.Cmd
	stderr bytes.Buffer
}

func (c *cmdReader) Close() error {
	c.ReadCloser.Close()
	if err := c.cmd.Wait(); err != nil {
		return fmt.Errorf("git archive: %w: %s", err, strings.TrimSpace(c.stderr.String()))
	}
	return nil
}
