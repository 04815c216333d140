package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/ProtonMail/go-crypto/openpgp/s2k"
	"golang.org/x/term"

	"kreide/internal/admin"
	"kreide/internal/portability"
	"kreide/store"
)

func exportCommand() *command {
	return &command{
		name:  "export",
		args:  "ADDRESS",
		nargs: 1,
		short: "write all data of an account into one encrypted archive",
		long: `Writes everything of the account ADDRESS into one tar archive, encrypted with
OpenPGP: its mail as a Maildir (Maildir/, flags in the file names), each
calendar as calendars/NAME.ics, each address book as contacts/NAME.vcf, and
its files under files/. Mail programs, calendar programs and 'kreide import'
read these back. This is the account owner's copy of their data.

The archive is always encrypted: to the owner's OpenPGP public key
(-pgp-key KEYFILE, armored or binary; every key in the file can decrypt), or
with a passphrase (-passphrase: asked twice on a terminal). It is written to
-o FILE, or to standard output when that is not a terminal. Decrypt with
'gpg --decrypt FILE | tar -x' (or any OpenPGP program).

The account's password unlocks it. From a script, give it on standard input,
then (with -passphrase) the passphrase, one per line. Works the same whether
kreide serve runs or not.

Example:
  kreide export anna@school.example -pgp-key anna.asc -o anna.tar.gpg
  kreide export anna@school.example -passphrase -o anna.tar.gpg
  printf '%s\n%s\n' 'the password' 'a passphrase' | kreide export anna@school.example -passphrase > anna.tar.gpg`,
		flags: func(fs *flag.FlagSet) {
			fs.String("o", "", "write the archive to `FILE` (it must not exist yet)")
			fs.String("pgp-key", "", "encrypt to the OpenPGP public key(s) in `KEYFILE`")
			fs.Bool("passphrase", false, "encrypt with a passphrase (asked twice, or read from standard input)")
		},
		run: exportRun,
	}
}

// pgpConfig is how exports are encrypted: AES-256 and compressed, a format
// GnuPG and every other OpenPGP program reads.
func pgpConfig() *packet.Config {
	return &packet.Config{
		DefaultCipher:          packet.CipherAES256,
		DefaultHash:            crypto.SHA256,
		DefaultCompressionAlgo: packet.CompressionZLIB,
		CompressionConfig:      &packet.CompressionConfig{Level: 6},
		S2KConfig:              &s2k.Config{S2KMode: s2k.IteratedSaltedS2K, Hash: crypto.SHA256, S2KCount: 65011712},
	}
}

// readPublicKeys reads the recipients of an export: armored or binary, and
// each must be able to encrypt.
func readPublicKeys(path string) (openpgp.EntityList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the key file: %w", err)
	}
	var keys openpgp.EntityList
	if bytes.Contains(data[:min(len(data), 1024)], []byte("-----BEGIN PGP")) {
		keys, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	} else {
		keys, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("%s is not an OpenPGP key file: %v", path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s has no OpenPGP key", path)
	}
	for _, k := range keys {
		if _, ok := k.EncryptionKey(time.Now()); !ok {
			return nil, fmt.Errorf("the key %X in %s cannot encrypt (expired, revoked, or without an encryption subkey)", k.PrimaryKey.Fingerprint, path)
		}
	}
	return keys, nil
}

func keyNames(keys openpgp.EntityList) string {
	var out []string
	for _, k := range keys {
		name := fmt.Sprintf("%X", k.PrimaryKey.Fingerprint)
		if id := k.PrimaryIdentity(); id != nil {
			name = id.Name + " (" + name + ")"
		}
		out = append(out, name)
	}
	return strings.Join(out, ", ")
}

func exportRun(ctx context.Context, e *env, args []string) error {
	addr, err := store.NormalizeAddress(args[0])
	if err != nil {
		return usagef("%s", strings.TrimPrefix(err.Error(), store.ErrInvalid.Error()+": "))
	}
	keyFile, usePass, outPath := e.flag("pgp-key"), e.flag("passphrase") == "true", e.flag("o")
	switch {
	case keyFile == "" && !usePass:
		return usagef("the export is always encrypted: give -pgp-key KEYFILE or -passphrase")
	case keyFile != "" && usePass:
		return usagef("give either -pgp-key or -passphrase, not both")
	}
	var keys openpgp.EntityList
	if keyFile != "" {
		if keys, err = readPublicKeys(keyFile); err != nil {
			return err
		}
	}
	if outPath == "" {
		if f, ok := e.stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return usagef("the archive is binary: give -o FILE or redirect standard output")
		}
	} else if _, err := os.Lstat(outPath); err == nil {
		return fmt.Errorf("%s already exists: remove it or choose another -o FILE", outPath)
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	pw, err := e.secret(fmt.Sprintf("Password of %s: ", addr), "the account's password")
	if err != nil {
		return err
	}
	var passphrase string
	if usePass {
		if passphrase, err = e.exportPassphrase(); err != nil {
			return err
		}
	}

	// The output: a temporary file next to FILE, renamed when complete, so
	// a failed export leaves nothing that looks finished.
	var out io.Writer = e.stdout
	var tmp *os.File
	if outPath != "" {
		tmp, err = os.CreateTemp(filepath.Dir(outPath), "."+filepath.Base(outPath)+".*")
		if err != nil {
			return fmt.Errorf("cannot write the archive: %w", err)
		}
		defer func() {
			if tmp != nil {
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}()
		out = tmp
	}
	bw := bufio.NewWriterSize(out, 256<<10)
	hints := &openpgp.FileHints{IsBinary: true, FileName: addr + ".tar", ModTime: time.Now()}
	var enc io.WriteCloser
	if usePass {
		enc, err = openpgp.SymmetricallyEncrypt(bw, []byte(passphrase), hints, pgpConfig())
	} else {
		enc, err = openpgp.Encrypt(bw, keys, nil, hints, pgpConfig())
	}
	if err != nil {
		return fmt.Errorf("starting the encryption: %w", err)
	}
	view := newProgressView(e, "exported")
	var last portability.Progress
	err = admin.Export(ctx, cfg, addr, pw, enc, func(p portability.Progress) {
		last = p
		view.update(p)
	})
	view.finish()
	if err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("finishing the encryption: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing the archive: %w", err)
	}
	if tmp != nil {
		if err := tmp.Sync(); err != nil {
			return fmt.Errorf("writing the archive: %w", err)
		}
		if err := tmp.Close(); err != nil {
			return fmt.Errorf("writing the archive: %w", err)
		}
		if err := os.Rename(tmp.Name(), outPath); err != nil {
			return fmt.Errorf("writing the archive: %w", err)
		}
		tmp = nil
	}
	w := e.stdout
	if outPath == "" {
		w = e.stderr // standard output carries the archive
	}
	to := "with the passphrase"
	if !usePass {
		to = "to " + keyNames(keys)
	}
	where := "standard output"
	if outPath != "" {
		where = outPath
	}
	fmt.Fprintf(w, "Exported %s: %d items (%s) to %s, encrypted %s.\n", addr, last.Done, humanBytes(last.DoneBytes), where, to)
	if outPath != "" {
		fmt.Fprintf(w, "Unpack it with: gpg --decrypt %s | tar -x\n", outPath)
	}
	return nil
}

// exportPassphrase reads the passphrase: twice without echo on a terminal,
// otherwise the next line of standard input.
func (e *env) exportPassphrase() (string, error) {
	p, err := e.secret("Passphrase for the archive: ", "the passphrase")
	if err != nil {
		return "", err
	}
	if len(p) < 8 {
		return "", errors.New("the passphrase is too short: use at least 8 characters")
	}
	if _, ok := e.terminal(); ok {
		again, err := e.secret("Type it again: ", "the passphrase")
		if err != nil {
			return "", err
		}
		if again != p {
			return "", errors.New("the two passphrases differ; try again")
		}
	}
	return p, nil
}
