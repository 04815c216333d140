package message

import (
	"strings"
	"sync"
	"time"
)

var months = [...]string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}

// zoneOffsets are the obsolete zone names of RFC 5322 section 4.3, in
// minutes. Military zones and other names are taken as UTC.
var zoneOffsets = map[string]int{
	"ut": 0, "utc": 0, "gmt": 0, "z": 0,
	"est": -5 * 60, "edt": -4 * 60,
	"cst": -6 * 60, "cdt": -5 * 60,
	"mst": -7 * 60, "mdt": -6 * 60,
	"pst": -8 * 60, "pdt": -7 * 60,
}

const maxZoneMinutes = 24*60 - 1

var zoneCache [2*maxZoneMinutes + 1]*time.Location
var zoneMu sync.Mutex

// fixedZone returns a shared *time.Location for a UTC offset in minutes
// (time.UTC for 0), so that equal dates decode to identical time.Time
// values and decoding does not allocate.
func fixedZone(minutes int) *time.Location {
	if minutes == 0 || minutes < -maxZoneMinutes || minutes > maxZoneMinutes {
		return time.UTC
	}
	zoneMu.Lock()
	defer zoneMu.Unlock()
	loc := zoneCache[minutes+maxZoneMinutes]
	if loc == nil {
		loc = time.FixedZone("", minutes*60)
		zoneCache[minutes+maxZoneMinutes] = loc
	}
	return loc
}

// makeDate builds the canonical time.Time for a Unix time and a zone
// offset in minutes.
func makeDate(unix int64, minutes int) time.Time {
	return time.Unix(unix, 0).In(fixedZone(minutes))
}

// parseDate parses an RFC 5322 date leniently: optional day name, day,
// month name, 2-4 digit year, hh:mm[:ss] and a numeric or named zone, in
// any order that can be told apart (ctime-style "Mon Jan 2 15:04:05 2006"
// works too). Comments are ignored. It returns the zero time if no date can
// be made out.
func parseDate(s string) time.Time {
	var (
		day, month, year  = -1, -1, -1
		hour, minute, sec = -1, -1, 0
		zone              = 0
		haveZone, sawTime bool
		nums, numLens     []int
		l                 = lexer{s: s}
	)
	for {
		l.skipCFWS()
		if l.eof() {
			break
		}
		c := l.s[l.i]
		switch {
		case c == '+' || c == '-':
			l.i++
			start := l.i
			for !l.eof() && (isDigit(l.s[l.i]) || l.s[l.i] == ':') {
				l.i++
			}
			if z, ok := parseZone(strings.ReplaceAll(l.s[start:l.i], ":", "")); ok && !haveZone {
				if c == '-' {
					z = -z
				}
				zone, haveZone = z, true
			}
		case isDigit(c):
			start := l.i
			for !l.eof() && (isDigit(l.s[l.i]) || l.s[l.i] == ':' || l.s[l.i] == '.') {
				l.i++
			}
			tok := l.s[start:l.i]
			if strings.IndexByte(tok, ':') >= 0 {
				if !sawTime {
					hour, minute, sec = parseClock(tok)
					sawTime = hour >= 0
				}
			} else if n, ok := atoiSmall(strings.TrimRight(tok, ".")); ok {
				nums = append(nums, n)
				numLens = append(numLens, len(strings.TrimRight(tok, ".")))
			}
		case isLetter(c):
			start := l.i
			for !l.eof() && isLetter(l.s[l.i]) {
				l.i++
			}
			w := strings.ToLower(l.s[start:l.i])
			if len(w) >= 3 && month < 0 {
				for i, m := range months {
					if strings.HasPrefix(w, m) {
						month = i + 1
						break
					}
				}
				if month >= 0 {
					continue
				}
			}
			if z, ok := zoneOffsets[w]; ok && !haveZone {
				zone, haveZone = z, true
			} else if len(w) == 1 && !haveZone {
				haveZone = true // military zone: treat as UTC
			}
		default:
			l.i++
		}
	}
	if month < 0 || !sawTime || len(nums) < 2 {
		return time.Time{}
	}
	// Day: the first number that fits in 1..31 and has at most 2 digits;
	// year: the first other number.
	for i, n := range nums {
		if day < 0 && numLens[i] <= 2 && n >= 1 && n <= 31 {
			day = n
		} else if year < 0 {
			year = n
			switch {
			case numLens[i] <= 2 && n < 50:
				year += 2000
			case numLens[i] <= 3:
				year += 1900
			}
		}
	}
	if day < 0 || year < 0 || year > 9999 || hour > 23 || minute > 59 || sec > 60 {
		return time.Time{}
	}
	unix := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC).Unix() - int64(zone)*60
	if unix <= minUnix || unix > maxUnix {
		return time.Time{}
	}
	return makeDate(unix, zone)
}

// The range of dates kept: after the zero time.Time, up to the year 9999.
const (
	minUnix = -62135596800 // 0001-01-01T00:00:00Z, time.Time{}
	maxUnix = 253402300799 // 9999-12-31T23:59:59Z
)

// parseZone parses "hhmm" into minutes.
func parseZone(s string) (int, bool) {
	if len(s) != 4 && len(s) != 2 {
		return 0, false
	}
	n, ok := atoiSmall(s)
	if !ok {
		return 0, false
	}
	if len(s) == 2 {
		n *= 100
	}
	h, m := n/100, n%100
	if m > 59 || h*60+m > maxZoneMinutes {
		return 0, false
	}
	return h*60 + m, true
}

// parseClock parses "hh:mm[:ss]".
func parseClock(s string) (h, m, sec int) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return -1, -1, 0
	}
	var ok bool
	if h, ok = atoiSmall(parts[0]); !ok {
		return -1, -1, 0
	}
	if m, ok = atoiSmall(parts[1]); !ok {
		return -1, -1, 0
	}
	if len(parts) == 3 {
		if sec, ok = atoiSmall(strings.SplitN(parts[2], ".", 2)[0]); !ok {
			return -1, -1, 0
		}
	}
	return h, m, sec
}

func atoiSmall(s string) (int, bool) {
	if s == "" || len(s) > 6 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
