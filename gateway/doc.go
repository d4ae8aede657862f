// Package gateway is kiln's local OpenFaaS gateway: it runs each deployed
// function through a Runner, reaching each instance on a loopback
// listener of its own (Instance.Listener, as a pod's IP), and serves, on
// loopback, the part of the
// gateway API that tools use: /function/<name>[.<namespace>][/path]
// (proxied), /async-function/<name>[/path] (202, then the answer to
// X-Callback-Url), /system/functions (list, deploy, update, delete),
// /system/function/<name>, /system/scale-function/<name>, /system/logs
// (the last 1000 lines of each function, and follow), /system/secrets,
// /system/namespaces, /system/info, /system/openapi.json (WithOpenAPI)
// and /healthz (GET and HEAD). An observer (WithObserver) sees each call
// of a function, bodies included, as kiln dev's API inference needs.
//
// A function runs as one or more replicas, each its own instance, and
// requests go to the ready ones in turn. Ready is asked as a Kubernetes
// readiness probe asks: the watchdog's /_/ready, which answers from the
// function's ready_path and max_inflight (/_/health for a classic image,
// whose /_/ready is the function's; the com.openfaas.ready.http.path
// annotation's path when set), until its first 200, then every 2 s. An
// update starts the new instances beside the old ones and routes to them
// only once each one is ready; the old ones then get SIGTERM and drain, so
// callers see no failed request across a redeploy. An instance that exits
// once it was ready is started again after a back-off; a function with no
// ready instance answers 503 meanwhile.
//
// A request waits, for up to the health timeout and while its caller
// does, when every ready instance serves max_inflight requests (the
// deployment's envVars over the image's environment) or when the only
// instance is starting again after an exit; one whose instance waits out
// its back-off, or fails its readiness, gets 503 at once, with why. A
// readiness path that answers 429, as the watchdog's /_/ready does at
// max_inflight, leaves a ready instance in service: busy is not failing.
//
// GET /metrics serves, with OpenFaaS's names and labels (function_name is
// name.namespace), gateway_function_invocation_total{function_name,code},
// gateway_functions_seconds{function_name,code} (the time the function
// took, queueing apart), gateway_function_invocation_started and
// gateway_service_count (replicas); and what OpenFaaS does not measure:
//
//	kiln_function_cold_start_seconds     histogram  instance start to first readiness, each run
//	kiln_function_queued_seconds         histogram  time a request waited (only those that did)
//	kiln_function_request_bytes          histogram  request body sizes
//	kiln_function_response_bytes         histogram  response body sizes
//	kiln_function_inflight               gauge      requests being served
//	kiln_function_max_inflight           gauge      max_inflight per instance, 0: none
//	kiln_function_queued_requests        gauge      requests waiting now
//	kiln_function_memory_bytes           gauge      {function_name,replica} RSS of its process tree
//	kiln_function_cpu_seconds_total      counter    {function_name,replica} its user+system CPU
//
// The watchdog exports the sizes, in-flight and max_inflight under the
// same names, so that dashboards (package dashboards) read a cluster too.
// Telemetry gives the console the same, with 5-second buckets over 15
// minutes.
//
// WithUI mounts a UI (kiln's console) under /ui/ and redirects / there;
// RecordBuild tells the gateway, which knows images by name only, how
// each was built, for the UI to show.
//
// As OpenFaaS's gateway, it asks for basic auth on /system/* and /ui/
// (WithBasicAuth) and leaves /function/* open. Beyond OpenFaaS, since it
// runs on a developer's machine, it answers only requests whose Host
// names it (loopback or WithAllowedHosts, on its port), against DNS
// rebinding, and refuses /system/* to other sites' pages (Origin,
// Sec-Fetch-Site), against cross-site requests.
package gateway
