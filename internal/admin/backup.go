package admin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"kreide/config"
	"kreide/store"
)

// The client side of kreide backup, restore and verify. The snapshot itself
// is taken by Execute (OpBackup), in serve when it runs; what is here moves
// files around the data dir, which the CLI can do and a hardened serve may
// not (it can write nowhere but its data dir).

// BackupResult says how a backup was made.
type BackupResult struct {
	// Served is true when kreide serve took the snapshot while serving.
	Served bool
}

// Backup writes a consistent snapshot of cfg's data dir to dst, which must
// not exist or be an empty directory. While serve runs it takes the snapshot
// (into a staging directory in the data dir) and keeps serving; the snapshot
// is then moved to dst: renamed when dst is on the same file system,
// otherwise copied. Without serve, the data dir is opened and copied directly.
func Backup(ctx context.Context, cfg *config.Config, dst string) (BackupResult, error) {
	var res BackupResult
	dst, err := filepath.Abs(dst)
	if err != nil {
		return res, err
	}
	if err := checkBackupTarget(cfg.DataDir, dst); err != nil {
		return res, err
	}
	resp, served, err := run(ctx, cfg, Request{Op: OpBackup}, Request{Op: OpBackup, Path: dst})
	res.Served = served
	if err != nil {
		return res, err
	}
	if resp.Error != "" {
		return res, errors.New(resp.Error)
	}
	if !served {
		return res, nil
	}
	name := resp.Path
	if !strings.HasPrefix(name, stagingPrefix) || strings.ContainsAny(name, `/\`) {
		return res, fmt.Errorf("kreide serve answered with an unexpected snapshot name %q", name)
	}
	staging := filepath.Join(cfg.DataDir, name)
	if err := moveTree(staging, dst); err != nil {
		os.RemoveAll(staging)
		return res, fmt.Errorf("moving the snapshot from %s to %s: %w", staging, dst, err)
	}
	return res, nil
}

// checkBackupTarget refuses a backup directory that is not empty or lies
// inside the data dir.
func checkBackupTarget(dataDir, dst string) error {
	data, err := filepath.Abs(dataDir)
	if err != nil {
		return err
	}
	if within(resolve(dst), resolve(data)) {
		return fmt.Errorf("%s is inside the data dir %s: put backups somewhere else, ideally on another disk", dst, data)
	}
	entries, err := os.ReadDir(dst)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case len(entries) > 0:
		return fmt.Errorf("%s is not empty: a backup goes into a new or empty directory, e.g. %s", dst, filepath.Join(filepath.Dir(dst), "kreide-YYYY-MM-DD"))
	}
	return nil
}

// resolve follows symbolic links in the longest existing prefix of path.
func resolve(path string) string {
	rest := ""
	for p := path; ; {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return path
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// moveTree moves the directory src to dst (absent or empty): a rename on one
// file system, otherwise a copy (every file and directory synced) and the
// removal of src.
func moveTree(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	if err := os.Remove(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err // not empty (checked before), or not ours to remove
	}
	err := os.Rename(src, dst)
	if err == nil {
		return syncPath(filepath.Dir(dst))
	}
	if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	if err := store.CopyTree(src, dst); err != nil {
		return err
	}
	return os.RemoveAll(src)
}

func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// ServeRunning reports whether a kreide serve answers on the control socket
// of dataDir.
func ServeRunning(ctx context.Context, dataDir string) (bool, error) {
	_, err := Call(ctx, SocketPath(dataDir), Request{Op: OpPing})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, errNoServer):
		return false, nil
	}
	return false, err
}

// Restore copies the backup at src into cfg's data dir, which must not exist
// or be empty, after checking the backup (store.Verify). It refuses while
// serve runs. The copy is made next to the data dir and renamed into place,
// so a serve started meanwhile finds either nothing or the whole backup.
func Restore(ctx context.Context, cfg *config.Config, src string) error {
	running, err := ServeRunning(ctx, cfg.DataDir)
	if err != nil {
		return err
	}
	if running {
		return fmt.Errorf("kreide serve is running with the data dir %s: stop it first (systemctl stop kreide), and restore into a new or empty data dir", cfg.DataDir)
	}
	if fi, err := os.Stat(src); err != nil {
		return fmt.Errorf("backup: %w", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("backup %s is not a directory", src)
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(dataDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("data dir %s is not empty: restore goes into a new or empty data dir; move the old one away first (e.g. mv %s %s.old) or set data_dir to a new directory", dataDir, dataDir, dataDir)
	}
	if err := os.MkdirAll(filepath.Dir(dataDir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dataDir), "."+filepath.Base(dataDir)+".restore-")
	if err != nil {
		return err
	}
	if err := store.Restore(ctx, src, tmp); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Remove(dataDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		os.RemoveAll(tmp)
		return fmt.Errorf("data dir %s: %w (did a kreide serve start meanwhile?)", dataDir, err)
	}
	if err := os.Rename(tmp, dataDir); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("data dir %s: %w (did a kreide serve start meanwhile?)", dataDir, err)
	}
	return syncPath(filepath.Dir(dataDir))
}

// VerifyResult is what Verify found.
type VerifyResult struct {
	Problems []string
	// Served is true when serve checked a fresh snapshot of the data dir.
	Served bool
}

// Verify checks the structure of cfg's data dir (store.Verify): directly
// when no process uses it, otherwise through serve, on a fresh snapshot
// (which needs as much free space in the data dir as the data itself).
func Verify(ctx context.Context, cfg *config.Config) (VerifyResult, error) {
	var res VerifyResult
	resp, err := Call(ctx, SocketPath(cfg.DataDir), Request{Op: OpVerify})
	if err == nil {
		res.Served = true
		res.Problems = resp.Problems
		if resp.Error != "" && len(resp.Problems) == 0 {
			return res, errors.New(resp.Error)
		}
		return res, nil
	}
	if !errors.Is(err, errNoServer) {
		return res, err
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "system.db")); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return res, fmt.Errorf("data dir %s has no system.db: is -config right?", cfg.DataDir)
		}
		return res, err
	}
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return res, err
	}
	defer unlock()
	res.Problems = Problems(store.Verify(ctx, cfg.DataDir))
	return res, ctx.Err()
}

// VerifyBackup checks a backup made by kreide backup (nothing uses it).
func VerifyBackup(ctx context.Context, dir string) ([]string, error) {
	if _, err := os.Stat(filepath.Join(dir, "system.db")); err != nil {
		return nil, fmt.Errorf("%s is not a kreide backup: %w", dir, err)
	}
	return Problems(store.Verify(ctx, dir)), ctx.Err()
}

// lockDataDir takes the data dir's lock: the flock on <data dir>/lock that
// store.Open takes, so that no serve starts while the files are read without
// a store.Directory.
func lockDataDir(dataDir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dataDir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, &InUseError{DataDir: dataDir}
	}
	return func() { f.Close() }, nil
}
