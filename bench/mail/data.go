package mail

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The test mail: what a school's mailboxes hold. Every message is made from
// a seed (user, number), so kreide and Dovecot get byte for byte the same
// messages with the same flags and dates without keeping them in memory:
// mostly short text mails, some HTML alternatives, replies with References,
// and one in a hundred with an attachment of 60-200 KiB (kreide keeps those
// in blob files rather than in its database).

var (
	firstNames = []string{"Anna", "Ben", "Clara", "David", "Elif", "Finn", "Greta", "Hannes", "Ida", "Jonas", "Kemal", "Lea", "Mia", "Noah", "Oskar", "Paula"}
	lastNames  = []string{"Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann", "Yilmaz", "Koch"}
	topics     = []string{"Elternabend", "Klassenfahrt", "Hausaufgaben", "Vertretungsplan", "Zeugniskonferenz", "Sportfest", "Mathe-Arbeit", "Fachschaft Deutsch", "Projektwoche", "Mensa", "Bücherliste", "Schulkonzert"}
	words      = strings.Fields("der die das und ist nicht wir bitte morgen Woche Termin Klasse Schüler Lehrerin Unterricht Raum Stunde Eltern Liste Frage Antwort danke Gruß neue Aufgabe bis zum Montag Dienstag Mittwoch Donnerstag Freitag Heft Buch Seite Test Note Ausflug Geld Formular unterschreiben abgeben zurück Information wichtig")
	epoch      = time.Date(2025, 9, 1, 7, 0, 0, 0, time.UTC)
)

// testMessage is one message as stored: its bytes with CRLF line ends (as
// IMAP and SMTP carry it), its IMAP flags and its internal date.
type testMessage struct {
	raw   []byte
	flags []string
	date  time.Time
}

func person(rng *rand.Rand) (name, addr string) {
	f, l := firstNames[rng.IntN(len(firstNames))], lastNames[rng.IntN(len(lastNames))]
	return f + " " + l, strings.ToLower(f) + "." + strings.ToLower(strings.NewReplacer("ü", "ue", "ö", "oe", "ä", "ae").Replace(l)) + "@schule.example"
}

// text writes about n bytes of German-looking prose in lines of ~70.
func text(b *bytes.Buffer, rng *rand.Rand, n int) {
	line := 0
	for start := b.Len(); b.Len()-start < n; {
		w := words[rng.IntN(len(words))]
		if line+len(w) > 70 {
			b.WriteString("\r\n")
			line = 0
		} else if line > 0 {
			b.WriteByte(' ')
			line++
		}
		b.WriteString(w)
		line += len(w)
	}
	b.WriteString("\r\n")
}

// makeMessage builds message i of user u (an address).
func makeMessage(u string, i int) testMessage {
	seed := uint64(0)
	for _, c := range u {
		seed = seed*31 + uint64(c)
	}
	rng := rand.New(rand.NewPCG(seed, uint64(i)))
	date := epoch.Add(time.Duration(i)*37*time.Minute + time.Duration(rng.IntN(600))*time.Second)
	fromName, from := person(rng)
	topic := topics[rng.IntN(len(topics))]
	var b bytes.Buffer
	fmt.Fprintf(&b, "Return-Path: <%s>\r\n", from)
	fmt.Fprintf(&b, "Received: from mx.schule.example (mx.schule.example [192.0.2.%d])\r\n\tby mail.bench.example with ESMTPS id %08x\r\n\tfor <%s>; %s\r\n",
		1+rng.IntN(250), rng.Uint32(), u, date.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "From: %s <%s>\r\nTo: %s\r\n", fromName, from, u)
	if rng.IntN(4) == 0 {
		n1, a1 := person(rng)
		n2, a2 := person(rng)
		fmt.Fprintf(&b, "Cc: %s <%s>, %s <%s>\r\n", n1, a1, n2, a2)
	}
	subject := topic
	if rng.IntN(3) == 0 {
		subject = "Re: " + topic
		fmt.Fprintf(&b, "In-Reply-To: <%d.%d@schule.example>\r\nReferences: <%d.%d@schule.example> <%d.%d@schule.example>\r\n",
			i-1, seed%1000, i-2, seed%1000, i-1, seed%1000)
	}
	fmt.Fprintf(&b, "Subject: %s (%d)\r\nDate: %s\r\nMessage-ID: <%d.%d@schule.example>\r\nMIME-Version: 1.0\r\n",
		subject, i, date.Format(time.RFC1123Z), i, seed%1000)
	size := 300 + int(float64(800)*rng.ExpFloat64())
	switch k := rng.IntN(100); {
	case k == 0: // with an attachment
		b.WriteString("Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
		text(&b, rng, size)
		b.WriteString("--b1\r\nContent-Type: application/pdf; name=\"Elternbrief.pdf\"\r\nContent-Disposition: attachment; filename=\"Elternbrief.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
		att := make([]byte, 60<<10+rng.IntN(140<<10))
		for j := range att {
			att[j] = byte(rng.Uint32())
		}
		enc := base64.StdEncoding.EncodeToString(att)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n--b1--\r\n")
	case k < 20: // text and HTML
		b.WriteString("Content-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n--b2\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
		var t bytes.Buffer
		text(&t, rng, size)
		b.Write(t.Bytes())
		b.WriteString("--b2\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n<html><body><p>")
		b.WriteString(strings.ReplaceAll(t.String(), "\r\n", "<br>\r\n"))
		b.WriteString("</p></body></html>\r\n--b2--\r\n")
	default:
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
		text(&b, rng, size)
	}
	var flags []string
	if rng.IntN(10) < 8 {
		flags = append(flags, `\Seen`)
	}
	if rng.IntN(20) == 0 {
		flags = append(flags, `\Flagged`)
	}
	if rng.IntN(10) == 0 {
		flags = append(flags, `\Answered`)
	}
	return testMessage{raw: b.Bytes(), flags: flags, date: date}
}

// newMessage is what a client appends or a server sends during the
// workloads: about size bytes, unique by n.
func newMessage(from, to string, n int, size int) []byte {
	rng := rand.New(rand.NewPCG(uint64(n), 99))
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Bench <%s>\r\nTo: <%s>\r\nSubject: Vertretungsplan Nr. %d\r\nDate: %s\r\nMessage-ID: <bench.%d.%d@sender.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
		from, to, n, time.Now().Format(time.RFC1123Z), n, time.Now().UnixNano())
	text(&b, rng, size-b.Len()-2)
	return b.Bytes()
}

// maildirFlags are the Maildir info letters of IMAP flags, in the
// alphabetical order Maildir requires.
func maildirFlags(flags []string) string {
	letters := map[string]byte{`\Draft`: 'D', `\Flagged`: 'F', `\Answered`: 'R', `\Seen`: 'S', `\Deleted`: 'T'}
	var s []byte
	for _, f := range flags {
		if l, ok := letters[f]; ok {
			s = append(s, l)
		}
	}
	slices.Sort(s)
	return string(s)
}

// writeMaildir writes messages 0..n-1 of user u into the Maildir dir
// (cur/, as a mail program that has seen them leaves them), as Dovecot's own
// delivery would: LF line ends, the size (S=) and the CRLF size (W=) in the
// file name, and the internal date as the file's mtime.
func writeMaildir(dir, u string, n int) error {
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return err
		}
	}
	for i := range n {
		m := makeMessage(u, i)
		lf := bytes.ReplaceAll(m.raw, []byte("\r\n"), []byte("\n"))
		name := fmt.Sprintf("%d.M%dP%dQ%d.bench,S=%d,W=%d:2,%s", m.date.Unix(), i, os.Getpid(), i, len(lf), len(m.raw), maildirFlags(m.flags))
		p := filepath.Join(dir, "cur", name)
		if err := os.WriteFile(p, lf, 0o600); err != nil {
			return err
		}
		if err := os.Chtimes(p, m.date, m.date); err != nil {
			return err
		}
	}
	return nil
}
