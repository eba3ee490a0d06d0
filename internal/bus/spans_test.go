package bus

import (
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry"
)

func TestDeliverySpan(t *testing.T) {
	pub := telemetry.Span{TraceID: telemetry.NewID(), SpanID: telemetry.NewSpanID()}
	req := &sandbox.Request{Kind: sandbox.KindEvent, Topic: "entry.saved", Attempt: 2, Trace: telemetry.Span{TraceID: pub.TraceID, ParentID: pub.SpanID}}
	start := time.Now()
	r := deliverySpan(publisherOf(req), "", "diary", "index-entry", req, start, start.Add(time.Millisecond), sandbox.ErrTimeout)
	if r == nil || r.TraceID != pub.TraceID || r.ParentID != pub.SpanID || !telemetry.IsSpanID(r.SpanID) || r.SpanID == pub.SpanID {
		t.Fatalf("delivery span %+v, want a child of %+v", r, pub)
	}
	if r.Name != "deliver entry.saved" || r.Kind != telemetry.KindConsumer || r.Error != "timeout" || !r.Start.Equal(start) {
		t.Errorf("delivery span = %+v", r)
	}
	want := map[string]telemetry.Attr{
		telemetry.AttrApp: telemetry.String(telemetry.AttrApp, "diary"), telemetry.AttrFunction: telemetry.String(telemetry.AttrFunction, "index-entry"),
		telemetry.AttrTrigger: telemetry.String(telemetry.AttrTrigger, "event"), telemetry.AttrTopic: telemetry.String(telemetry.AttrTopic, "entry.saved"),
		telemetry.AttrAttempt: telemetry.Int(telemetry.AttrAttempt, 2),
	}
	for _, a := range r.Attrs {
		if w, ok := want[a.Key]; ok && w != a {
			t.Errorf("attribute %s = %+v, want %+v", a.Key, a, w)
		}
		delete(want, a.Key)
	}
	if len(want) != 0 {
		t.Errorf("attributes missing: %v", want)
	}
	// No trace: the request id when it is shaped like a trace id, else none.
	rid := telemetry.NewRequestID()
	if r := deliverySpan(telemetry.Span{}, rid, "a", "f", req, start, start, nil); r == nil || r.TraceID != rid || r.ParentID != "" || r.Error != "" {
		t.Errorf("span from the request id = %+v", r)
	}
	if r := deliverySpan(telemetry.Span{}, "req-1234", "a", "f", req, start, start, nil); r != nil {
		t.Errorf("span without any trace = %+v", r)
	}
	obj := &sandbox.Request{Kind: sandbox.KindObject, Key: "photos/a.jpg", Operation: "put"}
	if r := deliverySpan(pub, "", "a", "f", obj, start, start, nil); r == nil || r.Name != "deliver object put" {
		t.Errorf("object delivery span = %+v", r)
	}
}
