// Package builderapi serves OpenFaaS's Function Builder API, the one
// `faas-cli publish --remote-builder` and `faas-cli build` (with
// OPENFAAS_REMOTE_BUILDER) send build contexts to, and builds them with
// kiln's executor code (executor.Build).
//
//	POST /build      body: an uncompressed tar of
//	                   context/…                    faas-cli's ./build/<fn> tree
//	                   com.openfaas.docker.config   {image, buildArgs, platforms, skipPush}
//	                   com.openfaas.secrets         optional, sealed with nacl/box
//	                 header X-Build-Signature: sha256=<hex HMAC-SHA256 of the body>
//	                 reply: NDJSON lines {log, image, status, error} when the
//	                 request accepts application/x-ndjson, else one object
//	GET  /publickey  {key_id, algorithm: "nacl/box", public_key}
//	GET  /healthz    200, for a Deployment's probes
//
// The signature is checked, in constant time, over the whole body before
// anything in it is read: a missing or wrong one gets 401 and builds
// nothing. Bodies are bounded (WithMaxBodySize), builds run at most
// WithConcurrency at once (the others wait their turn), and a request,
// its wait for a turn included, ends within WithBuildTimeout.
//
// What is built: the context's template.yml names the lang. A lang kiln
// has a pack for builds its handler, context/function/, with the pack;
// any other lang, or a context without template.yml (faas-cli's lang
// dockerfile), builds context/Dockerfile with the Dockerfile engine. The
// reply's image is NAME@sha256:….
package builderapi
