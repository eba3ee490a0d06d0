package usage

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/manifest"
)

// The bucket's keys. App and function names are [a-z0-9-]; an origin or
// a key name may hold anything, so it is escaped (escape).
//
//	u.<YYYYMMDDHH>.<app>.<function>.<origin>      a usage row (one hour)
//	b.app.<window>.<app>                           an app budget's counter
//	b.function.<window>.<app>.<function>           a function budget's counter
//	b.key.<window>.<key name>                      an API key budget's counter
//	a.<counter key without "b.">.<amount>.<level>  an alert raised (created once)
//
// <window> is h<YYYYMMDDHH>, d<YYYYMMDD> or m<YYYYMM> (UTC).
const (
	rowPrefix    = "u."
	budgetPrefix = "b."
	alertPrefix  = "a."
	hourLayout   = "2006010215"
)

func rowStoreKey(k rowKey) string {
	return rowPrefix + time.Unix(k.hour*3600, 0).UTC().Format(hourLayout) + "." + k.app + "." + k.function + "." + escape(k.origin)
}

func windowID(per manifest.Window, start time.Time) string {
	switch per {
	case manifest.WindowHour:
		return "h" + start.Format(hourLayout)
	case manifest.WindowMonth:
		return "m" + start.Format("200601")
	}
	return "d" + start.Format("20060102")
}

func budgetStoreKey(id budgetID, per manifest.Window, start time.Time) string {
	w := windowID(per, start)
	switch id.scope {
	case ScopeFunction:
		return budgetPrefix + ScopeFunction + "." + w + "." + id.app + "." + id.function
	case ScopeKey:
		return budgetPrefix + ScopeKey + "." + w + "." + escape(id.key)
	}
	return budgetPrefix + ScopeApp + "." + w + "." + id.app
}

func alertStoreKey(counterKey, amount string, level int) string {
	return alertPrefix + strings.TrimPrefix(counterKey, budgetPrefix) + "." + amount + "." + strconv.Itoa(level)
}

// escape writes s with only letters, digits, '-' and '_' as themselves and
// every other byte as "=XX" (hex), so any string is one valid key token
// and reads back exactly. The empty string is "=".
func escape(s string) string {
	if s == "" {
		return "="
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "=%02X", c)
	}
	return b.String()
}

var errBadEscape = fmt.Errorf("%w: malformed escaped key token", aegis.ErrInvalidArgument)

// unescape reads what escape wrote.
func unescape(s string) (string, error) {
	if s == "=" {
		return "", nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '=' {
			b.WriteByte(c)
			continue
		}
		if i+3 > len(s) {
			return "", errBadEscape
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", errBadEscape
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), nil
}

// parseRowKey reads a usage row's key.
func parseRowKey(key string) (hour time.Time, app, function, origin string, err error) {
	parts := strings.Split(strings.TrimPrefix(key, rowPrefix), ".")
	if !strings.HasPrefix(key, rowPrefix) || len(parts) != 4 {
		return time.Time{}, "", "", "", fmt.Errorf("usage row %q: %w", key, errBadEscape)
	}
	if hour, err = time.Parse(hourLayout, parts[0]); err != nil {
		return time.Time{}, "", "", "", fmt.Errorf("usage row %q: %w", key, errBadEscape)
	}
	if origin, err = unescape(parts[3]); err != nil {
		return time.Time{}, "", "", "", fmt.Errorf("usage row %q: %w", key, err)
	}
	return hour, parts[1], parts[2], origin, nil
}

func isConflict(err error) bool { return errors.Is(err, aegis.ErrConflict) }
