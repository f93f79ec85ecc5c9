package daemon

import (
	"archive/tar"
	"compress/flate"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/plat-paas/plat/store"
)

// errNoDaemon: nothing answers on the data dir's socket.
var errNoDaemon = errors.New("no plat daemon answers on the socket")

// adminBackup streams a backup (the local socket's GET /admin/backup). The
// archive is built before the first byte is sent; the outcome is in the
// X-Plat-Result trailer ("ok", or the error), as a failure may come after
// the status line.
func (s *server) adminBackup(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Trailer", resultTrailer)
	w.Header().Set("Content-Type", "application/gzip")
	w.WriteHeader(http.StatusOK)
	started := time.Now()
	s.log.Info("backup started")
	m, err := writeBackup(r.Context(), w, backupSource{
		store: s.store, dataDir: s.cfg.DataDir, commitWait: backupCommitWait, log: s.log,
	})
	if err != nil {
		s.log.Error("backup failed", "err", err)
		w.Header().Set(resultTrailer, oneLine(err.Error()))
		return
	}
	s.log.Info("backup written", "apps", len(m.Apps), "warnings", len(m.Warnings), "took", time.Since(started).Round(time.Millisecond))
	w.Header().Set(resultTrailer, "ok")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// backupMain runs `plat daemon backup FILE`.
func backupMain(args []string) int {
	return fileCommand(args, fileCommandSpec{
		name:    "plat daemon backup",
		dataDoc: "the daemon's data directory",
		force:   "replace FILE if it exists",
		usage:   "usage: plat daemon backup FILE [--data DIR] [--force]\n\nWrites the store, local CA, certificates, SSH host key and git repositories (not the images) to FILE, a tar.gz.\nRun it on the daemon's host as the daemon's user; the daemon may be running or stopped.",
		run:     runBackup,
	})
}

// fileCommandSpec describes `plat daemon backup|restore FILE [--data DIR] [--force]`.
type fileCommandSpec struct {
	name, dataDoc, force, usage string
	run                         func(ctx context.Context, file, dataDir string, force bool, out io.Writer) error
}

// fileCommand parses a backup or restore command line and runs it until
// it ends or is interrupted.
func fileCommand(args []string, spec fileCommandSpec) int {
	fs := flag.NewFlagSet(spec.name, flag.ContinueOnError)
	dataDir := fs.String("data", envOr("PLAT_DATA", DefaultDataDir), spec.dataDoc)
	force := fs.Bool("force", false, spec.force)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), spec.usage)
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fs.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := spec.run(ctx, pos[0], *dataDir, *force, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "plat: %v\n", err)
		return 1
	}
	return 0
}

// runBackup writes a backup of dataDir to file: through the running
// daemon's socket, or, when no daemon runs, from the data dir directly. The
// file appears whole or not at all (temp file, then link or rename), mode
// 0600: it holds token hashes and the CA's key.
func runBackup(ctx context.Context, file, dataDir string, force bool, out io.Writer) (err error) {
	if _, err := os.Lstat(file); err == nil && !force {
		return fmt.Errorf("%s already exists: choose another name, or pass --force to replace it", file)
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create backup file: %w", err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("create backup file: %w", err)
	}
	how := "from the running daemon"
	err = fetchBackup(ctx, filepath.Join(dataDir, socketName), tmp)
	if errors.Is(err, errNoDaemon) {
		how = "from " + dataDir + " directly (no daemon is running)"
		err = offlineBackup(ctx, dataDir, tmp)
	}
	if err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write backup file: %w", err)
	}
	// A backup that does not read back is not a backup.
	m, err := readBackup(tmp.Name(), nil)
	if err != nil {
		return fmt.Errorf("the backup does not read back: %w", err)
	}
	size, _ := tmp.Seek(0, io.SeekEnd)
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write backup file: %w", err)
	}
	if force {
		err = os.Rename(tmp.Name(), file)
	} else {
		// link, unlike rename, fails if file appeared meanwhile.
		err = os.Link(tmp.Name(), file)
	}
	if err != nil {
		return fmt.Errorf("save backup as %s: %w", file, err)
	}
	syncDir(filepath.Dir(file))
	fmt.Fprintf(out, "Backed up %d %s%s to %s (%s, %s)\n", len(m.Apps), plural(len(m.Apps), "app", "apps"), formatApps(m.appNames()), file, humanBytes(size), how)
	for _, w := range m.Warnings {
		fmt.Fprintf(out, "warning: %s\n", w)
	}
	return nil
}

// fetchBackup asks the daemon on socket for a backup and writes it to w.
func fetchBackup(ctx context.Context, socket string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://plat/admin/backup", nil)
	if err != nil {
		return err
	}
	resp, err := unixClient(socket).Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return errNoDaemon
		}
		return fmt.Errorf("cannot reach the daemon's socket %s: %w (are you the user the daemon runs as?)", socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode == http.StatusNotFound {
			return errors.New("the running daemon cannot make backups: it is older than this plat; upgrade it, or stop it and run the backup again")
		}
		return fmt.Errorf("the daemon refused the backup: %s", strings.TrimSpace(string(body)))
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("receive the backup from the daemon: %w", err)
	}
	if res := resp.Trailer.Get(resultTrailer); res != "ok" {
		if res == "" {
			res = "the daemon closed the connection before the end"
		}
		return fmt.Errorf("the backup failed: %s", res)
	}
	return nil
}

// offlineBackup backs up a data dir no daemon uses, opening its store.
func offlineBackup(ctx context.Context, dataDir string, w io.Writer) error {
	dbPath := filepath.Join(dataDir, storeEntry)
	if _, err := os.Stat(dbPath); err != nil {
		return fmt.Errorf("no plat data in %s (%w): pass the daemon's --data directory", dataDir, err)
	}
	st, err := store.Open(dbPath)
	if err != nil {
		return fmt.Errorf("no daemon answers on %s's socket, and its store cannot be opened: %w", dataDir, err)
	}
	defer st.Close()
	_, err = writeBackup(ctx, w, backupSource{store: st, dataDir: dataDir})
	return err
}

// readBackup reads the whole backup at path, checking that it is complete
// and undamaged (gzip's checksum covers every byte), and returns its
// manifest. each, if not nil, gets every entry after the manifest.
func readBackup(path string, each func(hdr *tar.Header, r io.Reader) error) (backupManifest, error) {
	var m backupManifest
	f, err := os.Open(path)
	if err != nil {
		return m, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return m, fmt.Errorf("%s is not a plat backup (not a gzip file): %w", path, err)
	}
	tr := tar.NewReader(gz)
	hdr, err := tr.Next()
	if err != nil {
		return m, damaged(path, err)
	}
	if hdr.Name != manifestEntry {
		return m, fmt.Errorf("%s is not a plat backup: it does not start with %s", path, manifestEntry)
	}
	if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(&m); err != nil {
		return m, fmt.Errorf("%s is not a plat backup: bad %s: %w", path, manifestEntry, err)
	}
	if m.Format < 1 || m.Format > backupFormat {
		return m, fmt.Errorf("%s has backup format %d, and this plat reads format %d: use the plat version that made it (%s) or a newer one", path, m.Format, backupFormat, m.PlatVersion)
	}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return m, damaged(path, err)
		}
		if each != nil {
			if err := each(hdr, tr); err != nil {
				return m, err
			}
		}
	}
	// The tar's end marker comes before gzip's checksum: read to the end.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return m, damaged(path, err)
	}
	return m, nil
}

// damaged explains a read error of a backup archive.
func damaged(path string, err error) error {
	var corrupt flate.CorruptInputError
	switch {
	case errors.As(err, &corrupt):
		return fmt.Errorf("%s is damaged: %w", path, err)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%s is truncated (it ends before the archive does): %w", path, err)
	case errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader), errors.Is(err, tar.ErrHeader):
		return fmt.Errorf("%s is damaged: %w", path, err)
	}
	return fmt.Errorf("cannot read %s: %w", path, err)
}

// parseInterleaved parses flags given before or after the positional
// arguments (`plat daemon backup FILE --force`).
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func formatApps(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return " (" + strings.Join(names, ", ") + ")"
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
