package telemetry

import "testing"

func TestParseTraceparent(t *testing.T) {
	const trace, span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	good := "00-" + trace + "-" + span + "-01"
	p, ok := ParseTraceparent(good)
	if !ok || p.TraceID != trace || p.ParentID != span || p.SpanID != "" {
		t.Fatalf("ParseTraceparent(%q) = %+v, %v", good, p, ok)
	}
	if _, ok := ParseTraceparent("01-" + trace + "-" + span + "-01-later-fields"); !ok {
		t.Error("a later version with extra fields was refused")
	}
	for _, bad := range []string{
		"", "00", good + "-extra", // version 00 has exactly four fields
		"ff-" + trace + "-" + span + "-01",
		"00-" + zeroTrace + "-" + span + "-01",
		"00-" + trace + "-" + zeroSpan + "-01",
		"00-" + "4BF92F3577B34DA6A3CE929D0E0E4736" + "-" + span + "-01",
		"00_" + trace + "-" + span + "-01",
		"00-" + trace + "-" + span + "-0g",
		"01-" + trace + "-" + span + "-01x",
	} {
		if p, ok := ParseTraceparent(bad); ok {
			t.Errorf("ParseTraceparent(%q) = %+v, want refused", bad, p)
		}
	}
}

func TestSpanTraceparentRoundTrip(t *testing.T) {
	s := Span{TraceID: NewID(), SpanID: NewSpanID()}
	p, ok := ParseTraceparent(s.Traceparent())
	if !ok || p.TraceID != s.TraceID || p.ParentID != s.SpanID {
		t.Fatalf("round trip of %+v gave %+v, %v", s, p, ok)
	}
	c := s.Child()
	if c.TraceID != s.TraceID || c.ParentID != s.SpanID || !IsSpanID(c.SpanID) || c.SpanID == s.SpanID {
		t.Fatalf("Child of %+v = %+v", s, c)
	}
	if (Span{}).Traceparent() != "" {
		t.Fatal("an empty span has a traceparent")
	}
}

// FuzzParseTraceparent: a traceparent comes from any client and any
// event; whatever it is, parsing never panics and what it accepts writes
// back to the same ids.
func FuzzParseTraceparent(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-x")
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		p, ok := ParseTraceparent(v)
		if !ok {
			return
		}
		q, ok := ParseTraceparent(Span{TraceID: p.TraceID, SpanID: p.ParentID}.Traceparent())
		if !ok || q != p {
			t.Fatalf("accepted %q as %+v but its re-encoding reads %+v", v, p, q)
		}
	})
}
