package sandbox

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFunctionMessage(t *testing.T) {
	long := strings.Repeat("é", MaxFunctionMessage) // two bytes a rune: cut mid-rune
	tests := []struct{ line, want string }{
		{"could not save: permission denied", "could not save: permission denied"},
		{"panic: boom\n\ngoroutine 1 [running]:\nmain.main()", "panic: boom"},
		{"  padded \r\nrest", "padded"},
		{"tab\there\x00nul\x1bescape\x7f", "tab here nul escape"},
		{"bad \xff byte", "bad \uFFFD byte"},
		{long, strings.Repeat("é", MaxFunctionMessage/2)},
		// An invalid byte becomes three: still cut to the bound.
		{strings.Repeat("\xffa", MaxFunctionMessage/2), strings.Repeat("\uFFFDa", MaxFunctionMessage/4)},
	}
	for _, tt := range tests {
		got := functionMessage(tt.line)
		if got != tt.want {
			t.Errorf("functionMessage(%.40q) = %.40q, want %.40q", tt.line, got, tt.want)
		}
		if len(got) > MaxFunctionMessage || !utf8.ValidString(got) {
			t.Errorf("functionMessage(%.40q) is %d bytes, valid UTF-8 %v", tt.line, len(got), utf8.ValidString(got))
		}
	}
}

func TestFunctionErrorKeepsItsChain(t *testing.T) {
	inv := &invocation{errorLine: "event handler failed: no such order"}
	err := fmt.Errorf("invoke a/f@v1: %w", inv.withMessage(trapf("handler returned failure code 1")))
	if !errors.Is(err, ErrTrap) {
		t.Errorf("%v does not match ErrTrap", err)
	}
	if got := FunctionMessage(err); got != "event handler failed: no such order" {
		t.Errorf("FunctionMessage = %q", got)
	}
	if got, want := err.Error(), "invoke a/f@v1: function failed: handler returned failure code 1"; got != want {
		t.Errorf("Error() = %q, want %q (the function's words stay out of it)", got, want)
	}
	if FunctionMessage(ErrTimeout) != "" || (&invocation{}).withMessage(ErrTrap) != ErrTrap {
		t.Error("a message appeared where the function gave none")
	}
}

func TestTakeLogBudget(t *testing.T) {
	if !TakeLogBudget(context.Background(), 1<<30) {
		t.Error("outside an invocation there is no budget to run out of")
	}
	rec := newRecorder()
	inv := &invocation{outputLeft: 300, host: rec}
	ctx := withInvocation(context.Background(), inv)
	var granted int
	for range 10 {
		if TakeLogBudget(ctx, 100) {
			granted++
		}
	}
	if granted != 3 || inv.outputLeft != 0 {
		t.Errorf("granted %d of 100 bytes from 300, %d left", granted, inv.outputLeft)
	}
	// The guest's own output draws on the same budget: none left now.
	inv.ctx = ctx
	inv.guestLog(0, "after the denials")
	if lines := rec.logLines(); !inv.truncated || len(lines) != 1 || !strings.Contains(lines[0].Msg, "truncated") {
		t.Errorf("guest output after the budget was spent on denials: %+v", lines)
	}
}
