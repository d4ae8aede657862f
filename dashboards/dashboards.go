package dashboards

import (
	"fmt"
	"io"
)

// Format is what Write writes.
type Format string

const (
	// Grafana is a dashboard's JSON model, for Grafana's import.
	Grafana Format = "grafana"
	// PrometheusRules is a Prometheus rules file, in YAML.
	PrometheusRules Format = "prometheus-rules"
)

// Formats are the formats Write knows.
var Formats = []Format{Grafana, PrometheusRules}

// Option configures Write.
type Option func(*options) error

type options struct {
	slo float64
}

// DefaultSLO is the share of calls that must be answered below 500.
const DefaultSLO = 0.995

// WithSLO sets the availability objective the error-budget alerts burn:
// the share of calls answered with a status below 500 over 30 days,
// above 0 and below 1. Default: DefaultSLO.
func WithSLO(target float64) Option {
	return func(o *options) error {
		if target <= 0 || target >= 1 {
			return fmt.Errorf("SLO %v: want a share between 0 and 1, such as 0.995", target)
		}
		o.slo = target
		return nil
	}
}

// Write writes the dashboard or the rules to w.
func Write(w io.Writer, f Format, opts ...Option) error {
	o := options{slo: DefaultSLO}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return err
		}
	}
	var (
		b   []byte
		err error
	)
	switch f {
	case Grafana:
		b, err = grafana()
	case PrometheusRules:
		b, err = rules(o.slo)
	default:
		return fmt.Errorf("format %q: want %q or %q", f, Grafana, PrometheusRules)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", f, err)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("writing %s: %w", f, err)
	}
	return nil
}
