package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"kreide/internal/admin"
)

func backupCommand() *command {
	return &command{
		name:  "backup",
		args:  "DIR",
		nargs: 1,
		short: "copy all data to a new directory, while serving",
		long: `Writes a consistent copy of the whole data dir (accounts, mail, keys, the
outbound queue) to DIR, which must not exist yet or be empty. Everything stays
encrypted as it is in the data dir: without a user's password or recovery
code nobody can read that user's data in the backup either, so keep the
recovery codes apart from the backups.

While kreide serve runs it takes the copy without stopping (it needs as much
free space in the data dir as the data takes, for a moment: the copy is then
moved to DIR). Otherwise the data dir is copied directly.

Check a backup with 'kreide verify -backup DIR'; put it back with
'kreide restore DIR'.

Example:
  kreide backup /srv/backup/kreide-$(date +%F) -config /etc/kreide/kreide.toml`,
		run: backupRun,
	}
}

func restoreCommand() *command {
	return &command{
		name:  "restore",
		args:  "DIR",
		nargs: 1,
		short: "put a backup back into an empty data dir",
		long: `Copies the backup in DIR (made by kreide backup) into the data dir of the
config, after checking that the backup is complete and undamaged. kreide serve
must not be running, and the data dir must not exist yet or be empty: move
the old one away first. Nothing is overwritten.

Example:
  systemctl stop kreide
  mv /var/lib/kreide /var/lib/kreide.old
  kreide restore /srv/backup/kreide-2025-03-01 -config /etc/kreide/kreide.toml
  systemctl start kreide`,
		run: restoreRun,
	}
}

func verifyCommand() *command {
	return &command{
		name:  "verify",
		short: "check that the data dir (or a backup) is complete and undamaged",
		long: `Checks the structure of the data dir without any password: every database is
intact, every account has its store, every message has its content, and the
mailbox counters are right. Prints each problem found, and exits with status
1 when there is one.

While kreide serve runs, the data dir cannot be read directly: serve then
takes a fresh snapshot (as kreide backup does, in the data dir) and the check
runs on that snapshot.

With -backup DIR it checks a backup instead.

Example:
  kreide verify -config /etc/kreide/kreide.toml
  kreide verify -backup /srv/backup/kreide-2025-03-01`,
		flags: func(fs *flag.FlagSet) {
			fs.String("backup", "", "check the backup in `DIR` instead of the data dir")
		},
		run: verifyRun,
	}
}

func backupRun(ctx context.Context, e *env, args []string) error {
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	dst, err := filepath.Abs(args[0])
	if err != nil {
		return err
	}
	res, err := admin.Backup(ctx, cfg, dst)
	if err != nil {
		return err
	}
	how := "kreide serve was not running"
	if res.Served {
		how = "taken by kreide serve while serving"
	}
	fmt.Fprintf(e.stdout, "Backed up %s to %s (%s).\n", cfg.DataDir, dst, how)
	fmt.Fprintf(e.stdout, "Check it with: kreide verify -backup %s\n", dst)
	return nil
}

func restoreRun(ctx context.Context, e *env, args []string) error {
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	src, err := filepath.Abs(args[0])
	if err != nil {
		return err
	}
	if err := admin.Restore(ctx, cfg, src); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Restored %s into %s. Start kreide serve with this config to use it.\n", src, cfg.DataDir)
	if os.Geteuid() == 0 {
		fmt.Fprintf(e.stdout, "The restored files belong to root: if kreide serve runs as its own user, give them to it\n"+
			"(chown -R kreide:kreide %s; the systemd unit's StateDirectory= does that when it starts).\n", cfg.DataDir)
	}
	return nil
}

func verifyRun(ctx context.Context, e *env, args []string) error {
	var problems []string
	what := ""
	if dir := e.flag("backup"); dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		if problems, err = admin.VerifyBackup(ctx, abs); err != nil {
			return err
		}
		what = "the backup " + abs
	} else {
		cfg, err := e.loadConfig()
		if err != nil {
			return err
		}
		res, err := admin.Verify(ctx, cfg)
		if err != nil {
			var inUse *admin.InUseError
			if errors.As(err, &inUse) {
				return fmt.Errorf("%v; kreide verify checks the data dir directly only when nothing else uses it, and through kreide serve's control socket while serve runs", err)
			}
			return err
		}
		problems = res.Problems
		what = "the data dir " + cfg.DataDir
		if res.Served {
			what += " (a fresh snapshot taken by kreide serve, which is running)"
		}
	}
	for _, p := range problems {
		fmt.Fprintf(e.stdout, "problem: %s\n", p)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s has %d problem(s), listed above", what, len(problems))
	}
	fmt.Fprintf(e.stdout, "Checked %s: no problems found.\n", what)
	return nil
}
