package message

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// typicalMessage builds a ~10 KiB real-world-shaped message: a block of
// Received/DKIM headers and a multipart/alternative with a
// quoted-printable text part and an HTML part.
func typicalMessage() []byte {
	var b strings.Builder
	for i := range 6 {
		fmt.Fprintf(&b, "Received: from mx%d.example.net (mx%d.example.net [192.0.2.%d])\r\n\tby mail.example.org with ESMTPS id 4F2A1B3C4D%d\r\n\tfor <bob@example.org>; Tue, 04 Mar 2025 09:15:0%d +0100 (CET)\r\n", i, i, i, i, i)
	}
	b.WriteString("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.net; s=sel;\r\n" +
		"\th=from:to:subject:date:message-id; bh=" + strings.Repeat("A", 44) + ";\r\n\tb=" + strings.Repeat("B", 76) + "\r\n\t " + strings.Repeat("C", 76) + "\r\n" +
		"From: =?utf-8?q?J=C3=B6rg_Beispiel?= <joerg@example.net>\r\n" +
		"To: Bob <bob@example.org>, \"Doe, Jane\" <jane@example.org>\r\n" +
		"Cc: team@example.org\r\n" +
		"Subject: =?utf-8?q?Quartalsbericht_Q1_=E2=80=93_bitte_pr=C3=BCfen?=\r\n" +
		"Date: Tue, 4 Mar 2025 09:14:58 +0100\r\n" +
		"Message-ID: <20250304081458.GA1234@example.net>\r\n" +
		"In-Reply-To: <abc123@example.org>\r\n" +
		"References: <abc123@example.org>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/alternative; boundary=\"b1_5f3c2e9d7a\"\r\n\r\n" +
		"--b1_5f3c2e9d7a\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	for b.Len() < 5500 {
		b.WriteString("Hallo Bob, anbei der Quartalsbericht. Bitte pr=C3=BCfe die Zahlen bis F=\r\nreitag.\r\n")
	}
	b.WriteString("\r\n--b1_5f3c2e9d7a\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<html><body>\r\n")
	for b.Len() < 10200 {
		b.WriteString("<p>Hallo Bob, anbei der Quartalsbericht. Bitte pr=C3=BCfe die Zahlen.</p>\r\n")
	}
	b.WriteString("</body></html>\r\n--b1_5f3c2e9d7a--\r\n")
	return []byte(b.String())
}

// bigMessage builds a message with a text part and a base64 attachment of
// about size bytes (encoded).
func bigMessage(size int) []byte {
	raw := make([]byte, size*3/4)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	enc := base64.StdEncoding.EncodeToString(raw)
	var b bytes.Buffer
	b.WriteString("From: a@example.com\r\nTo: b@example.com\r\nSubject: big attachment\r\nDate: Tue, 4 Mar 2025 09:14:58 +0100\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n" +
		"--XX\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n")
	for len(enc) > 0 {
		n := min(76, len(enc))
		b.WriteString(enc[:n])
		b.WriteString("\r\n")
		enc = enc[n:]
	}
	b.WriteString("--XX--\r\n")
	return b.Bytes()
}

func BenchmarkParse(b *testing.B) {
	for _, c := range []struct {
		name string
		msg  []byte
	}{
		{"10KiB", typicalMessage()},
		{"5MiB", bigMessage(5 << 20)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.msg)))
			b.ReportAllocs()
			r := bytes.NewReader(c.msg)
			for b.Loop() {
				r.Reset(c.msg)
				if _, err := Parse(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMarshal(b *testing.B) {
	s, _ := Parse(bytes.NewReader(typicalMessage()))
	b.ReportAllocs()
	for b.Loop() {
		s.Marshal()
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	s, _ := Parse(bytes.NewReader(typicalMessage()))
	enc := s.Marshal()
	b.ReportMetric(float64(len(enc)), "encoded-bytes")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Unmarshal(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalEnvelope(b *testing.B) {
	s, _ := Parse(bytes.NewReader(typicalMessage()))
	enc := s.Marshal()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := UnmarshalEnvelope(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func TestBenchmarkMessages(t *testing.T) {
	for _, msg := range [][]byte{typicalMessage(), bigMessage(1 << 20)} {
		s := mustParse(t, msg)
		if shape(s.Root) != "multipart/alternative(text/plain text/html)" && shape(s.Root) != "multipart/mixed(text/plain application/pdf)" {
			t.Errorf("unexpected shape %s", shape(s.Root))
		}
		if s.Envelope.Subject == "" || len(s.Envelope.From) != 1 {
			t.Errorf("envelope %+v", s.Envelope)
		}
	}
}
