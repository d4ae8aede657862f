package dashboards

import (
	"encoding/json"
	"fmt"
)

// The dashboard's JSON model, as much of it as the panels need: Grafana
// fills in the rest on import.
type (
	dashboard struct {
		UID           string     `json:"uid"`
		Title         string     `json:"title"`
		Description   string     `json:"description"`
		Tags          []string   `json:"tags"`
		SchemaVersion int        `json:"schemaVersion"`
		Editable      bool       `json:"editable"`
		Refresh       string     `json:"refresh"`
		Time          timeRange  `json:"time"`
		Templating    templating `json:"templating"`
		Panels        []panel    `json:"panels"`
	}
	timeRange  struct{ From, To string }
	templating struct {
		List []variable `json:"list"`
	}
	variable struct {
		Name       string      `json:"name"`
		Label      string      `json:"label"`
		Type       string      `json:"type"`
		Query      any         `json:"query"`
		Definition string      `json:"definition,omitempty"`
		Datasource *datasource `json:"datasource,omitempty"`
		Multi      bool        `json:"multi,omitempty"`
		IncludeAll bool        `json:"includeAll,omitempty"`
		AllValue   string      `json:"allValue,omitempty"`
		Refresh    int         `json:"refresh,omitempty"`
		Sort       int         `json:"sort,omitempty"`
	}
	datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	}
	panel struct {
		ID          int            `json:"id"`
		Type        string         `json:"type"`
		Title       string         `json:"title"`
		Description string         `json:"description,omitempty"`
		GridPos     gridPos        `json:"gridPos"`
		Datasource  *datasource    `json:"datasource,omitempty"`
		FieldConfig *fieldConfig   `json:"fieldConfig,omitempty"`
		Options     map[string]any `json:"options,omitempty"`
		Targets     []target       `json:"targets,omitempty"`
		Collapsed   *bool          `json:"collapsed,omitempty"`
	}
	gridPos     struct{ H, W, X, Y int }
	fieldConfig struct {
		Defaults  map[string]any `json:"defaults"`
		Overrides []any          `json:"overrides"`
	}
	target struct {
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
		RefID        string `json:"refId"`
		Format       string `json:"format,omitempty"`
	}
)

func (t timeRange) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"from": t.From, "to": t.To})
}

func (g gridPos) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]int{"h": g.H, "w": g.W, "x": g.X, "y": g.Y})
}

// sel picks the dashboard's functions; sel5xx their server errors.
const (
	sel    = `{function_name=~"$function_name"}`
	sel5xx = `{function_name=~"$function_name",code=~"5.."}`
	// rate is Grafana's interval for rate(), at least four scrapes.
	rateWindow = "$__rate_interval"
)

// q is a query and its legend.
type q struct{ expr, legend string }

// quantiles are the p50, p95 and p99 of histogram h, per function.
func quantiles(h string) []q {
	var out []q
	for _, p := range []struct{ q, name string }{{"0.5", "p50"}, {"0.95", "p95"}, {"0.99", "p99"}} {
		out = append(out, q{fmt.Sprintf("histogram_quantile(%s, sum by (function_name, le) (rate(%s_bucket%s[%s])))", p.q, h, sel, rateWindow), "{{function_name}} " + p.name})
	}
	return out
}

// row is a titled row of panels, each half the width unless alone.
type row struct {
	title  string
	panels []spec
}

type spec struct {
	title, desc, unit, kind string // kind: "" for a time series
	queries                 []q
}

func dashboardRows() []row {
	invocations := "gateway_function_invocation_total"
	return []row{
		{"Requests: rate, errors, duration", []spec{
			{"Requests per second", "Calls answered, by function.", "reqps", "", []q{
				{fmt.Sprintf("sum by (function_name) (rate(%s%s[%s]))", invocations, sel, rateWindow), "{{function_name}}"}}},
			{"Error ratio", "Share of calls answered 500 or above.", "percentunit", "", []q{
				{fmt.Sprintf("sum by (function_name) (rate(%s%s[%s])) / sum by (function_name) (rate(%s%s[%s]))", invocations, sel5xx, rateWindow, invocations, sel, rateWindow), "{{function_name}}"}}},
			{"Answers by status", "Calls per second, by status code.", "reqps", "", []q{
				{fmt.Sprintf("sum by (code) (rate(%s%s[%s]))", invocations, sel, rateWindow), "{{code}}"}}},
			{"Duration p50, p95, p99", "Time the function took, queueing apart.", "s", "", quantiles("gateway_functions_seconds")},
		}},
		{"Latency", []spec{
			{"Latency heatmap", "Calls per duration bucket of gateway_functions_seconds.", "s", "heatmap", []q{
				{fmt.Sprintf("sum by (le) (increase(gateway_functions_seconds_bucket%s[%s]))", sel, rateWindow), "{{le}}"}}},
		}},
		{"Saturation", []spec{
			{"In flight against capacity", "Requests being served, and max_inflight times replicas where max_inflight is set.", "short", "", []q{
				{fmt.Sprintf("sum by (function_name) (kiln_function_inflight%s)", sel), "{{function_name}} in flight"},
				{fmt.Sprintf("max by (function_name) (kiln_function_max_inflight%s > 0) * max by (function_name) (gateway_service_count%s)", sel, sel), "{{function_name}} capacity"}}},
			{"Queued and refused", "Requests waiting for a slot now (kiln's gateway), refused with 429 per second (the watchdog).", "short", "", []q{
				{fmt.Sprintf("sum by (function_name) (kiln_function_queued_requests%s)", sel), "{{function_name}} queued"},
				{fmt.Sprintf("sum by (function_name) (rate(kiln_function_rejected_total%s[%s]))", sel, rateWindow), "{{function_name}} refused/s"}}},
			{"Time queued", "Wait for a max_inflight slot or a starting instance, of the requests that waited.", "s", "", quantiles("kiln_function_queued_seconds")},
			{"Replicas", "", "short", "", []q{
				{fmt.Sprintf("max by (function_name) (gateway_service_count%s)", sel), "{{function_name}}"}}},
		}},
		{"Cold starts", []spec{
			{"Cold start duration", "Instance start to first readiness: p50 and p95 over the last hour (kiln's gateway), and each watchdog's last.", "s", "", []q{
				{fmt.Sprintf("histogram_quantile(0.5, sum by (function_name, le) (increase(kiln_function_cold_start_seconds_bucket%s[1h])))", sel), "{{function_name}} p50"},
				{fmt.Sprintf("histogram_quantile(0.95, sum by (function_name, le) (increase(kiln_function_cold_start_seconds_bucket%s[1h])))", sel), "{{function_name}} p95"},
				{fmt.Sprintf("max by (function_name) (kiln_watchdog_cold_start_seconds%s)", sel), "{{function_name}} watchdog"}}},
			{"Cold starts per hour", "", "short", "", []q{
				{fmt.Sprintf("sum by (function_name) (increase(kiln_function_cold_start_seconds_count%s[1h]))", sel), "{{function_name}}"}}},
		}},
		{"Resources", []spec{
			{"Memory per replica", "Resident memory of each replica's process tree.", "bytes", "", []q{
				{fmt.Sprintf("sum by (function_name, replica) (kiln_function_memory_bytes%s)", sel), "{{replica}}"}}},
			{"CPU per replica", "Cores used by each replica's process tree.", "short", "", []q{
				{fmt.Sprintf("sum by (function_name, replica) (rate(kiln_function_cpu_seconds_total%s[%s]))", sel, rateWindow), "{{replica}}"}}},
			{"Body sizes p95", "Request and response bodies.", "bytes", "", []q{
				{fmt.Sprintf("histogram_quantile(0.95, sum by (function_name, le) (rate(kiln_function_request_bytes_bucket%s[%s])))", sel, rateWindow), "{{function_name}} request"},
				{fmt.Sprintf("histogram_quantile(0.95, sum by (function_name, le) (rate(kiln_function_response_bytes_bucket%s[%s])))", sel, rateWindow), "{{function_name}} response"}}},
		}},
	}
}

func grafana() ([]byte, error) {
	ds := &datasource{Type: "prometheus", UID: "${datasource}"}
	d := dashboard{
		UID: "kiln-functions", Title: "kiln functions",
		Description:   "Rate, errors, duration, saturation, cold starts and resources of OpenFaaS functions run by kiln. Written by kiln dashboards.",
		Tags:          []string{"kiln", "openfaas"},
		SchemaVersion: 39, Editable: true, Refresh: "30s",
		Time: timeRange{"now-1h", "now"},
		Templating: templating{List: []variable{
			{Name: "datasource", Label: "Data source", Type: "datasource", Query: "prometheus"},
			{
				Name: "function_name", Label: "Function", Type: "query", Datasource: ds,
				Query:      map[string]string{"query": "label_values(gateway_function_invocation_total, function_name)", "refId": "functions"},
				Definition: "label_values(gateway_function_invocation_total, function_name)",
				Multi:      true, IncludeAll: true, AllValue: ".*", Refresh: 2, Sort: 1,
			},
		}},
	}
	id, y := 0, 0
	for _, r := range dashboardRows() {
		id++
		collapsed := false
		d.Panels = append(d.Panels, panel{ID: id, Type: "row", Title: r.title, GridPos: gridPos{H: 1, W: 24, Y: y}, Collapsed: &collapsed})
		y++
		for i, s := range r.panels {
			id++
			w := 12
			if len(r.panels) == 1 {
				w = 24
			}
			p := panel{
				ID: id, Type: "timeseries", Title: s.title, Description: s.desc, Datasource: ds,
				GridPos:     gridPos{H: 8, W: w, X: (i % 2) * 12, Y: y + (i/2)*8},
				FieldConfig: &fieldConfig{Defaults: map[string]any{"unit": s.unit}, Overrides: []any{}},
			}
			for k, qu := range s.queries {
				p.Targets = append(p.Targets, target{Expr: qu.expr, LegendFormat: qu.legend, RefID: string(rune('A' + k))})
			}
			if s.kind == "heatmap" {
				p.Type = "heatmap"
				p.Targets[0].Format = "heatmap"
				p.Options = map[string]any{
					"calculate": false,
					"yAxis":     map[string]any{"unit": s.unit},
					"color":     map[string]any{"scheme": "Oranges", "mode": "scheme"},
				}
			}
			d.Panels = append(d.Panels, p)
		}
		y += (len(r.panels) + 1) / 2 * 8
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
