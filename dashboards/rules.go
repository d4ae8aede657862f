package dashboards

import (
	"bytes"
	"fmt"
	"strconv"

	"gopkg.in/yaml.v3"
)

// A Prometheus rules file.
type (
	ruleFile struct {
		Groups []ruleGroup `yaml:"groups"`
	}
	ruleGroup struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	}
	rule struct {
		Record      string            `yaml:"record,omitempty"`
		Alert       string            `yaml:"alert,omitempty"`
		Expr        string            `yaml:"expr"`
		For         string            `yaml:"for,omitempty"`
		Labels      map[string]string `yaml:"labels,omitempty"`
		Annotations map[string]string `yaml:"annotations,omitempty"`
	}
)

// The recorded series' names, level:metric:operations as Prometheus'
// naming practice has them.
const (
	recRate       = "function_name:gateway_function_invocation:rate5m"
	recErrorRatio = "function_name:gateway_function_errors:ratio_rate" // + window
	recP99        = "function_name:gateway_functions_seconds:p99_rate5m"
	recSaturation = "function_name:kiln_function_saturation:ratio"
)

// burnWindows are the error ratio's windows: the multiwindow alerts' long
// and short ones.
var burnWindows = []string{"5m", "30m", "1h", "6h", "3d"}

// Alert thresholds that do not depend on the SLO.
const (
	errorRatioHigh = 0.05 // of calls, over 5 minutes
	p99High        = 2.5  // seconds
	saturatedAt    = 0.9  // of max_inflight times replicas
	queuedHigh     = 1.0  // seconds, p95
)

func num(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }

func rules(slo float64) ([]byte, error) {
	budget := 1 - slo
	sloText := num(100*slo) + "%"
	rec := []rule{{Record: recRate, Expr: "sum by (function_name) (rate(gateway_function_invocation_total[5m]))"}}
	for _, w := range burnWindows {
		rec = append(rec, rule{
			Record: recErrorRatio + w,
			Expr:   fmt.Sprintf(`sum by (function_name) (rate(gateway_function_invocation_total{code=~"5.."}[%s])) / sum by (function_name) (rate(gateway_function_invocation_total[%s]))`, w, w),
		})
	}
	rec = append(rec,
		rule{Record: recP99, Expr: "histogram_quantile(0.99, sum by (function_name, le) (rate(gateway_functions_seconds_bucket[5m])))"},
		rule{Record: recSaturation, Expr: "sum by (function_name) (kiln_function_inflight) / (max by (function_name) (kiln_function_max_inflight > 0) * max by (function_name) (gateway_service_count))"},
	)
	// burn is the multiwindow condition: the budget burns factor times
	// too fast over both windows.
	burn := func(factor float64, long, short string) string {
		t := num(factor * budget)
		return fmt.Sprintf("(%s%s > %s and %s%s > %s)", recErrorRatio, long, t, recErrorRatio, short, t)
	}
	fn := "{{ $labels.function_name }}"
	alerts := []rule{
		{
			Alert: "KilnFunctionErrorBudgetBurnFast", Expr: burn(14.4, "1h", "5m") + " or " + burn(6, "6h", "30m"), For: "2m",
			Labels: map[string]string{"severity": "critical", "slo": sloText},
			Annotations: map[string]string{
				"summary":     fn + " burns its error budget fast",
				"description": "At this rate " + fn + " spends its month's error budget (SLO " + sloText + " of calls below 500) in days: 2% of it within an hour, or 5% within six hours.",
			},
		},
		{
			Alert: "KilnFunctionErrorBudgetBurnSlow", Expr: burn(1, "3d", "6h"), For: "1h",
			Labels: map[string]string{"severity": "warning", "slo": sloText},
			Annotations: map[string]string{
				"summary":     fn + " burns its error budget",
				"description": fn + " has spent 10% of its month's error budget (SLO " + sloText + ") in three days and still does.",
			},
		},
		{
			Alert: "KilnFunctionErrorRateHigh", Expr: recErrorRatio + "5m > " + num(errorRatioHigh), For: "5m",
			Labels:      map[string]string{"severity": "warning"},
			Annotations: map[string]string{"summary": fn + " answers {{ $value | humanizePercentage }} of calls with 5xx"},
		},
		{
			Alert: "KilnFunctionLatencyHigh", Expr: recP99 + " > " + num(p99High), For: "10m",
			Labels:      map[string]string{"severity": "warning"},
			Annotations: map[string]string{"summary": fn + "'s p99 is {{ $value | humanizeDuration }}, above " + num(p99High) + " s"},
		},
		{
			Alert: "KilnFunctionSaturated", Expr: recSaturation + " > " + num(saturatedAt), For: "5m",
			Labels:      map[string]string{"severity": "warning"},
			Annotations: map[string]string{"summary": fn + " uses {{ $value | humanizePercentage }} of its max_inflight slots: scale it up or raise max_inflight"},
		},
		{
			Alert: "KilnFunctionQueueing", Expr: "histogram_quantile(0.95, sum by (function_name, le) (rate(kiln_function_queued_seconds_bucket[5m]))) > " + num(queuedHigh), For: "5m",
			Labels:      map[string]string{"severity": "warning"},
			Annotations: map[string]string{"summary": fn + "'s queued requests wait {{ $value | humanizeDuration }} (p95) for a slot"},
		},
		{
			Alert: "KilnFunctionRefusing", Expr: "sum by (function_name) (rate(kiln_function_rejected_total[5m])) > 0", For: "5m",
			Labels:      map[string]string{"severity": "warning"},
			Annotations: map[string]string{"summary": fn + "'s watchdogs refuse requests at max_inflight (429)"},
		},
	}
	var buf bytes.Buffer
	buf.WriteString("# Prometheus rules for kiln's functions, written by kiln dashboards.\n# SLO: " + sloText + " of calls answered below 500 over 30 days.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(ruleFile{Groups: []ruleGroup{{Name: "kiln-functions.rules", Rules: rec}, {Name: "kiln-functions.alerts", Rules: alerts}}}); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
