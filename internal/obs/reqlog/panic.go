package reqlog

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/rs/zerolog"

	"github.com/mkgraph/mkgraph/internal/apierr"
)

// LogPanic logs a recovered panic with its type and stack. The panic value
// itself is logged only for runtime errors, whose text cannot hold request
// data (identity data must never reach a log).
func LogPanic(log *zerolog.Logger, p any, msg string) {
	ev := log.Error().Str("code", apierr.CodeInternal).Str("panic_type", fmt.Sprintf("%T", p))
	if re, ok := p.(runtime.Error); ok {
		ev = ev.Str("panic", re.Error())
	}
	ev.Bytes("stack", debug.Stack()).Msg(msg)
}
