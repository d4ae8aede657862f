package main

import (
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/dashboards"
	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/internal/usage"
)

func newDashboardsCmd(g *globals) *cobra.Command {
	var output, file string
	var slo float64
	cmd := &cobra.Command{
		Use:   "dashboards --output grafana|prometheus-rules [--file F]",
		Short: "Write a Grafana dashboard or Prometheus rules for the functions' metrics",
		Long: `Write a Grafana dashboard (--output grafana) or Prometheus recording and
alerting rules (--output prometheus-rules) for the series kiln's gateway
and watchdog export: rate, errors and duration per function, a latency
heatmap, saturation, cold starts, memory and CPU, and alerts on errors,
latency, saturation and the burn of an error budget (--slo).`,
		Example: `  kiln dashboards --output grafana --file kiln-functions.json
  kiln dashboards --output prometheus-rules --slo 99.9 > kiln-rules.yml`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := dashboards.Format(output)
			if !slices.Contains(dashboards.Formats, f) {
				return usage.Errorf("--output %q: want grafana or prometheus-rules", output)
			}
			if slo <= 0 || slo >= 100 {
				return usage.Errorf("--slo %v: want a percentage between 0 and 100, such as 99.5", slo)
			}
			write := func(w io.Writer) error { return dashboards.Write(w, f, dashboards.WithSLO(slo/100)) }
			if file == "" {
				return write(g.stdout)
			}
			if err := atomicfile.WriteFrom(file, write); err != nil {
				return fmt.Errorf("--file %s: %w", file, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "what to write: grafana (a dashboard's JSON) or prometheus-rules (YAML)")
	cmd.Flags().StringVar(&file, "file", "", "write to this file instead of stdout")
	cmd.Flags().Float64Var(&slo, "slo", 100*dashboards.DefaultSLO, "availability objective in percent, for the error-budget alerts: calls answered below 500 over 30 days")
	cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{string(dashboards.Grafana), string(dashboards.PrometheusRules)}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}
