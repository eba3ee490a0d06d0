package manifest

import (
	"errors"
	"strings"
	"time"

	cron "github.com/netresearch/go-cron"
)

// cronParser reads the grammar docs/manifest.md documents: five fields
// (minute, hour, day of month, month, day of week) or a descriptor. The
// library's default, when both day fields are restricted, is that both must
// match; DowOrDom keeps the meaning of standard cron (and of robfig/cron,
// which Aegis used before): either one matching is enough, so "0 0 1 * MON"
// still fires on the 1st and on every Monday. No minimum for @every here:
// ParseCron rounds short intervals up itself, so a manifest that deployed
// before still does (see ParseCron). The options are constants, so Must
// cannot panic at run time.
var cronParser = cron.MustNewParser(
	cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor | cron.DowOrDom,
).WithMinEveryInterval(0)

// errCronTimeZone refuses TZ= and CRON_TZ= prefixes: validity would then
// depend on the time zone database of the machine that parses the manifest.
var errCronTimeZone = errors.New("time zone prefixes (TZ=, CRON_TZ=) are not supported")

// CronSchedule is when a schedule trigger fires: the first activation after
// a given time. internal/schedule runs it.
type CronSchedule interface {
	Next(time.Time) time.Time
}

// ParseCron parses the cron expression of a schedule trigger. Deploy
// validation and internal/schedule both call it, so what a deploy accepts
// is exactly what runs. Leading and trailing space is ignored. "@every"
// intervals under a second run every second, as they always have.
func ParseCron(spec string) (s CronSchedule, err error) {
	spec = strings.TrimSpace(spec)
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return nil, errCronTimeZone
	}
	// The expression is untrusted input; a panic in the parser would take
	// down the admin API, so it becomes an error instead.
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, errors.New("unparsable expression")
		}
	}()
	sched, err := cronParser.Parse(spec)
	if err != nil {
		return nil, err // names the field at fault; callers name the expression
	}
	if d, ok := sched.(cron.ConstantDelaySchedule); ok && d.Delay < time.Second {
		return cron.Every(d.Delay), nil // rounds up to one second
	}
	return sched, nil
}
