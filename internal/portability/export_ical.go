package portability

import (
	"bytes"
	"strings"

	"kreide/store"
)

// mergeCalendars makes one VCALENDAR of a collection's objects: their
// components as stored, each VTIMEZONE once, and the calendar's name and
// colour as the properties other programs read on import.
func mergeCalendars(c store.Collection, objs []*store.Object) []byte {
	var out, zones, body bytes.Buffer
	out.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//kreide//export//EN\r\n")
	if c.DisplayName != "" {
		writeFolded(&out, "X-WR-CALNAME:"+escapeText(c.DisplayName))
	}
	if c.Description != "" {
		writeFolded(&out, "X-WR-CALDESC:"+escapeText(c.Description))
	}
	if c.Color != "" {
		writeFolded(&out, "X-APPLE-CALENDAR-COLOR:"+c.Color)
	}
	seenZone := make(map[string]bool)
	for _, o := range objs {
		depth := 0
		var zone bytes.Buffer
		inZone, zoneID := false, ""
		for raw := range bytes.Lines(o.Data) {
			line := bytes.TrimRight(raw, "\r\n")
			if len(line) == 0 {
				continue
			}
			name, _, value := propName(string(line))
			folded := line[0] == ' ' || line[0] == '\t'
			if !folded && name == "BEGIN" {
				depth++
				if depth == 2 && strings.EqualFold(strings.TrimSpace(value), "VTIMEZONE") {
					inZone, zoneID = true, ""
					zone.Reset()
				}
			}
			switch {
			case depth <= 1:
				// VCALENDAR's own lines: the merged calendar has its own.
			case inZone:
				zone.Write(line)
				zone.WriteString("\r\n")
				if !folded && depth == 2 && name == "TZID" {
					zoneID = strings.TrimSpace(value)
				}
			default:
				body.Write(line)
				body.WriteString("\r\n")
			}
			if !folded && name == "END" {
				if depth == 2 && inZone {
					inZone = false
					if !seenZone[zoneID] {
						seenZone[zoneID] = true
						zones.Write(zone.Bytes())
					}
				}
				depth--
			}
		}
	}
	out.Write(zones.Bytes())
	out.Write(body.Bytes())
	out.WriteString("END:VCALENDAR\r\n")
	return out.Bytes()
}

// escapeText escapes an iCalendar TEXT value (RFC 5545 section 3.3.11).
func escapeText(s string) string {
	return strings.NewReplacer(`\`, `\\`, ";", `\;`, ",", `\,`, "\n", `\n`, "\r", "").Replace(s)
}

// writeFolded writes a content line folded at 75 octets (RFC 5545 section
// 3.1), never inside a UTF-8 sequence.
func writeFolded(b *bytes.Buffer, line string) {
	for len(line) > 75 {
		cut := 75
		for cut > 1 && line[cut]&0xc0 == 0x80 {
			cut--
		}
		b.WriteString(line[:cut])
		b.WriteString("\r\n ")
		line = line[cut:]
	}
	b.WriteString(line)
	b.WriteString("\r\n")
}
