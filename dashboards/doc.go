// Package dashboards writes a Grafana dashboard and Prometheus rules for
// kiln's functions, from the series kiln's gateway and watchdog export
// (gateway/doc.go names them): what `kiln dashboards` prints.
//
// The dashboard has one row of panels per question, for the functions
// its function_name variable picks: rate, errors and duration (RED), a
// latency heatmap from gateway_functions_seconds' buckets, saturation
// (in-flight against max_inflight times replicas, requests queued and
// refused, time queued), cold starts, body sizes, and each replica's
// memory and CPU.
//
// The rules record each function's request rate, error ratio over the
// windows the alerts need and p99 latency, and alert on a high error
// rate, a high p99, saturation, and the burn of an error budget: with an
// availability SLO (default 99.5% of calls answered below 500 over 30
// days), the multiwindow, multi-burn-rate alerts of Google's SRE workbook
// page when 2% of the month's budget burns in an hour or 5% in six
// hours, and open a ticket when 10% burns in three days.
//
// The same names hold in a cluster, where OpenFaaS's gateway exports the
// gateway_* series and kiln's watchdog the kiln_function_* ones it
// measures, labelled function_name when the pod sets OPENFAAS_NAME.
package dashboards
