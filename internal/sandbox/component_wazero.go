//go:build aegis_wazero

package sandbox

import (
	"context"
	"fmt"
)

// wazero has no component model: this build serves core modules only and
// refuses a component at deploy (docs/components.md).

type componentModule struct{}

type componentInstance struct{}

func (*componentModule) close(context.Context) error { return nil }

func (*componentInstance) close() {}

func (e *Engine) compileComponent(context.Context, []byte) (*Module, error) {
	return nil, fmt.Errorf("%w: a WebAssembly component (WASI 0.2): this server was built with its second engine, which runs core modules only; the default build serves components", ErrInvalidModule)
}

func (f *Function) newComponent(context.Context) (*instance, error) {
	return nil, fmt.Errorf("%w: components need the default build", ErrInvalidModule)
}

func (f *Function) invokeComponent(context.Context, *invocation) (*Response, error) {
	return nil, fmt.Errorf("%w: components need the default build", ErrInvalidModule)
}
