package alert

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/auth"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// Headers of a delivery. The signature is the one Aegis checks on the
// webhooks it accepts (auth.SignWebhook):
//
//	Aegis-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>
//
// and the alert's id lets a receiver drop a second delivery of one alert.
const (
	HeaderSignature = "Aegis-Signature"
	HeaderAlertID   = "Aegis-Alert-Id"
)

// Bounds and defaults of delivery.
const (
	// MinSecretLen is the shortest signing secret accepted: 32 bytes, a
	// full HMAC-SHA256 key.
	MinSecretLen = 32
	// maxSecretLen bounds a secret read from a file or the environment.
	maxSecretLen = 4096
	// MaxWebhooks bounds --alert-webhook: each is a consumer, and every
	// alert a POST to each.
	MaxWebhooks = 16
	// DeliveryTimeout bounds one POST, connection and answer included.
	DeliveryTimeout = 10 * time.Second
	// The retries: the first after RetryBase, each later one twice as
	// long, none longer than RetryMax, MaxAttempts attempts in all (with
	// the defaults about four minutes from the first to the last).
	DefaultRetryBase   = time.Second
	DefaultRetryMax    = time.Minute
	DefaultMaxAttempts = 10
	// staleAfter: an alert this old is no longer delivered. Only a webhook
	// set again after it was removed meets one: its consumer remembers
	// where it stopped, and an operator wants today's alerts, not a
	// month's backlog.
	staleAfter = 24 * time.Hour
	// maxAnswer is how much of a receiver's answer is read (and dropped)
	// so the connection can be reused.
	maxAnswer = 64 << 10
	// ackWait is how long the stream waits for a delivery's outcome before
	// handing the alert to another server: well beyond DeliveryTimeout,
	// so only a server that died mid-delivery lets it go.
	ackWait = 3 * DeliveryTimeout
	// maxInFlight bounds the alerts one webhook is sent at once by one
	// server.
	maxInFlight = 8
)

// The outcomes of one delivery attempt, as WebhookConfig.OnOutcome hears
// them (the metric aegis_guard_alert_deliveries_total's label).
const (
	OutcomeDelivered = "delivered"
	OutcomeRetried   = "retried"
	OutcomeFailed    = "failed"
)

// WebhookConfig says where alerts are delivered and how.
type WebhookConfig struct {
	// URLs are the operator's webhooks (--alert-webhook): https, or http
	// to a loopback address only. Every alert goes to each.
	URLs []string
	// Secret signs every delivery; at least MinSecretLen bytes.
	Secret []byte
	// Client sends the deliveries; nil is NewClient(). Tests give one
	// whose transport dials loopback only. Redirects are never followed,
	// whichever client: a signed alert goes where the operator said.
	Client *http.Client
	// Logger hears of retries and of deliveries given up; nil: none.
	Logger *slog.Logger
	// OnOutcome, when set, hears every attempt's outcome (OutcomeDelivered,
	// OutcomeRetried, OutcomeFailed).
	OnOutcome func(outcome string)
	// RetryBase, RetryMax and MaxAttempts shape retries (zero: the
	// defaults); tests shorten them.
	RetryBase, RetryMax time.Duration
	MaxAttempts         int
	// ForgetAfter is how long a webhook's consumer outlives the last
	// server delivering to it (the URL taken out of every server's
	// flags); zero: a day, when its alerts would be too old to send.
	ForgetAfter time.Duration
}

func (c WebhookConfig) withDefaults() WebhookConfig {
	if c.RetryBase <= 0 {
		c.RetryBase = DefaultRetryBase
	}
	if c.RetryMax <= 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.ForgetAfter <= 0 {
		c.ForgetAfter = staleAfter
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.OnOutcome == nil {
		c.OnOutcome = func(string) {}
	}
	return c
}

// CheckWebhooks validates the webhooks and the secret together: no more
// than MaxWebhooks URLs, each one CheckURL accepts, and with any of them a
// secret of at least MinSecretLen bytes. The error never quotes the secret
// nor a URL's path or query.
func CheckWebhooks(urls []string, secret []byte) error {
	if len(urls) == 0 {
		return nil
	}
	if len(urls) > MaxWebhooks {
		return fmt.Errorf("--alert-webhook: at most %d webhooks, not %d: %w", MaxWebhooks, len(urls), aegis.ErrInvalidArgument)
	}
	for _, u := range urls {
		if _, err := CheckURL(u); err != nil {
			return err
		}
	}
	switch {
	case len(secret) == 0:
		return fmt.Errorf("--alert-webhook needs a signing secret: --alert-webhook-secret-file FILE or AEGIS_ALERT_WEBHOOK_SECRET: %w", aegis.ErrInvalidArgument)
	case len(secret) < MinSecretLen:
		return fmt.Errorf("the alert webhook secret is %d bytes, fewer than %d: %w", len(secret), MinSecretLen, aegis.ErrInvalidArgument)
	case len(secret) > maxSecretLen:
		return fmt.Errorf("the alert webhook secret is more than %d bytes: %w", maxSecretLen, aegis.ErrInvalidArgument)
	}
	return nil
}

// CheckURL parses a webhook's URL: absolute, https, or http to a loopback
// address (127.0.0.1, [::1], localhost: a relay on the same machine),
// with a host and no fragment. The error names the URL by scheme and host
// only.
func CheckURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("--alert-webhook: not an absolute http(s) URL: %w", aegis.ErrInvalidArgument)
	}
	name := redact(u)
	switch {
	case u.Fragment != "":
		return nil, fmt.Errorf("--alert-webhook %s: a fragment is never sent: %w", name, aegis.ErrInvalidArgument)
	case u.Scheme == "https":
	case u.Scheme == "http" && loopbackHost(u.Hostname()):
	case u.Scheme == "http":
		return nil, fmt.Errorf("--alert-webhook %s: plain http only to a loopback address; use https: %w", name, aegis.ErrInvalidArgument)
	default:
		return nil, fmt.Errorf("--alert-webhook %s: the scheme must be https (or http to a loopback address): %w", name, aegis.ErrInvalidArgument)
	}
	return u, nil
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.Unmap().IsLoopback()
}

// redact names a webhook in logs and errors: scheme and host, never the
// user, path or query, which often carry the receiver's own token.
func redact(u *url.URL) string {
	return u.Scheme + "://" + u.Host
}

// ConsumerName is the durable consumer of the webhook at rawURL: the
// same on every server, so the servers sharing a NATS share it and each
// alert goes to that webhook once; derived from a hash, so the URL's
// secrets are not in the consumer's name.
func ConsumerName(rawURL string) string {
	h := sha256.Sum256([]byte(rawURL))
	return "alert_webhook_" + hex.EncodeToString(h[:12])
}

// NewClient is the default delivery client: every phase bounded, no
// redirect followed, a proxy from the environment (HTTPS_PROXY) as the
// operator's network may need.
func NewClient() *http.Client {
	return &http.Client{
		Timeout: DeliveryTimeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: DeliveryTimeout,
			ExpectContinueTimeout: time.Second,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: noRedirect,
	}
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Webhooks delivers the alerts of the stream to the operator's webhooks,
// one durable consumer per webhook.
type Webhooks struct {
	cancel context.CancelFunc
	subs   []*jetstream.Subscription
}

// webhook is the delivery to one URL.
type webhook struct {
	cfg      WebhookConfig
	url      string // as configured, only ever sent to
	name     string // redacted, for logs
	consumer string
	secret   []byte
	client   *http.Client
}

// StartWebhooks starts delivering to every webhook of cfg the alerts
// published from now on (and those a webhook's consumer has not delivered
// yet, when it existed before: the servers sharing the NATS share it, and
// a restart resumes it). The deliveries run until Close.
func StartWebhooks(node *jetstream.Node, cfg WebhookConfig) (*Webhooks, error) {
	if err := CheckWebhooks(cfg.URLs, cfg.Secret); err != nil {
		return nil, fmt.Errorf("start alert webhooks: %w", err)
	}
	cfg = cfg.withDefaults()
	client := NewClient()
	if cfg.Client != nil {
		c := *cfg.Client
		c.CheckRedirect = noRedirect
		client = &c
	}
	// The deliveries outlive the start: their context ends with Close.
	ctx, cancel := context.WithCancel(context.Background())
	w := &Webhooks{cancel: cancel}
	var urls []string
	for _, raw := range cfg.URLs {
		if !slices.Contains(urls, raw) {
			urls = append(urls, raw)
		}
	}
	for _, raw := range urls {
		u, _ := CheckURL(raw) // checked above
		h := &webhook{cfg: cfg, url: raw, name: redact(u), consumer: ConsumerName(raw),
			secret: bytes.Clone(cfg.Secret), client: client}
		sub, err := node.Consume(ctx, jetstream.ConsumerConfig{
			Stream: Stream, Durable: h.consumer, FilterSubject: Subject,
			AckWait: ackWait, MaxAckPending: maxInFlight,
			// A new webhook starts with the alerts raised from now on.
			DeliverNew: true,
			// A webhook no server delivers to any more (taken out of the
			// flags) loses its consumer once its alerts would be stale.
			InactiveThreshold: cfg.ForgetAfter,
		}, h.handle)
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("start alert webhook %s: %w", h.name, err)
		}
		w.subs = append(w.subs, sub)
	}
	return w, nil
}

// Close stops the deliveries: one in progress is cut short and handed
// back to the stream, for another server or the next start. Safe to call
// more than once.
func (w *Webhooks) Close() {
	if w == nil {
		return
	}
	w.cancel()
	for _, s := range w.subs {
		s.Stop()
	}
}

// handle is one delivery attempt of one alert to one webhook.
func (h *webhook) handle(ctx context.Context, m *jetstream.Message) {
	log := h.cfg.Logger.With(logkey.URL, h.name, logkey.Consumer, h.consumer)
	a, err := decode(m.Data)
	if err != nil {
		log.Warn("unreadable alert record not delivered", logkey.Seq, m.Seq, logkey.Error, err)
		h.settle(log, m, OutcomeFailed)
		return
	}
	log = log.With(logkey.AlertID, a.ID, logkey.Rule, a.Rule)
	attempt := int(m.NumDelivered)
	if attempt > h.cfg.MaxAttempts || time.Since(a.Time) > staleAfter {
		// Past its attempts (the last one's outcome was lost with the
		// server making it), or stale.
		log.Warn("alert webhook delivery given up", logkey.Alert, true, logkey.Attempts, attempt-1,
			logkey.Reason, "too old or too many attempts")
		h.settle(log, m, OutcomeFailed)
		return
	}
	err = h.post(ctx, a)
	switch {
	case err == nil:
		h.settle(log, m, OutcomeDelivered)
	case ctx.Err() != nil:
		// Closing: back to the stream at once, for another server.
		_ = m.Nak(context.Background(), 0)
	case attempt >= h.cfg.MaxAttempts:
		log.Warn("alert webhook delivery given up", logkey.Alert, true, logkey.Attempts, attempt, logkey.Error, err)
		h.settle(log, m, OutcomeFailed)
	default:
		delay := h.backoff(attempt)
		log.Info("alert webhook delivery failed, will retry", logkey.Attempt, attempt, logkey.Delay, delay.String(), logkey.Error, err)
		if nerr := m.Nak(context.Background(), delay); nerr != nil {
			// The stream redelivers it after ackWait instead.
			log.Warn("alert webhook retry not scheduled", logkey.Error, nerr)
		}
		h.cfg.OnOutcome(OutcomeRetried)
	}
}

// settle ends an alert's delivery to this webhook for good: acknowledged
// when delivered, terminated otherwise.
func (h *webhook) settle(log *slog.Logger, m *jetstream.Message, outcome string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	if outcome == OutcomeDelivered {
		err = m.Ack(ctx)
	} else {
		err = m.Term(ctx)
	}
	if err != nil {
		// Not settled: the stream hands it out again after ackWait, and a
		// delivered alert may reach the receiver twice (Aegis-Alert-Id
		// tells).
		log.Warn("alert delivery outcome not recorded", logkey.Error, err)
	}
	h.cfg.OnOutcome(outcome)
}

// backoff is the wait after the attempt-th failure: RetryBase doubled
// each time, at most RetryMax.
func (h *webhook) backoff(attempt int) time.Duration {
	d := h.cfg.RetryBase
	for i := 1; i < attempt && d < h.cfg.RetryMax; i++ {
		d *= 2
	}
	return min(d, h.cfg.RetryMax)
}

// post sends a, signed now; nil when the receiver answered 2xx.
func (h *webhook) post(ctx context.Context, a guard.Alert) error {
	body, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode alert: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, DeliveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", errors.Unwrap(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "aegis-alerts")
	req.Header.Set(HeaderSignature, auth.SignWebhook(h.secret, time.Now(), body))
	req.Header.Set(HeaderAlertID, a.ID)
	resp, err := h.client.Do(req)
	if err != nil {
		// A *url.Error quotes the whole URL; keep what went wrong only.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the receiver answered %d", resp.StatusCode)
	}
	return nil
}
