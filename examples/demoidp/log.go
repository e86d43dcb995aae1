package demoidp

import (
	"log"
	"strings"

	"go.uber.org/zap"
)

// newSAMLLogger returns a standard logger, which is what samlidp logs
// to, that writes to l: samlidp's "ERROR:" lines at warn level, the rest
// at debug level.
func newSAMLLogger(l *zap.Logger) *log.Logger {
	return log.New(samlLogWriter{l.Named("saml")}, "", 0)
}

// samlLogWriter turns each line samlidp logs into a zap entry.
type samlLogWriter struct{ logger *zap.Logger }

// Write logs p, one line of samlidp's log.
func (w samlLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if rest, ok := strings.CutPrefix(msg, "ERROR: "); ok {
		w.logger.Warn(rest)
		return len(p), nil
	}
	if ce := w.logger.Check(zap.DebugLevel, msg); ce != nil {
		ce.Write()
	}
	return len(p), nil
}
