// Package python builds Python functions in the OpenFaaS layouts as they
// are: a handler folder with handler.py and requirements.txt.
//
//   - python3-http: handle(event, context), event.body bytes, a dict with
//     statusCode, body and headers returned (openfaas-contracts.md §2.4);
//     GET, PUT, POST, PATCH and DELETE.
//   - python3-flask: handle(req), req the body as str (bytes when RAW_BODY
//     is true or 1), the return value taken as Flask takes a view's (§2.5);
//     GET and POST.
//   - python3 and python, the classic templates: handle(req), req the
//     body as str, its return value printed unless None. The image sets no
//     mode, so the watchdog forks python3 index.py per request, body on
//     stdin, as the classic watchdog does (§3.8); index.py is then
//     shim/classic.py.
//
// python3-http and python3-flask run on Flask and waitress, as the
// templates do: kiln's server (shim/flask.py, ours, written from the
// contract) calls handle inside a Flask request context, so handlers may
// use flask's request, Response and streaming. Flask, waitress and their
// dependencies are pinned with hashes in shim/server-requirements.txt and
// installed by pip into /home/app/server-packages, a layer of its own
// shared by every such function built on a host. The server listens on
// 127.0.0.1 and env http_port (5000). The image's Python is Debian's 3.11
// (the "python" runtime base); a PYTHON_VERSION build argument asking for
// another is refused.
//
// Layers, bottom first: bytecode for the standard library modules the
// entry point loads (the server with Flask and waitress until its first
// answer, or the classic index.py), learnt by running it at build time
// with the host's Python (shim/stdlib.py) and compiled from the base's own
// Debian packages (Debian ships none: its postinst compiles it, and no
// postinst runs in a kiln base; without it every start compiles inspect,
// logging, email and the rest), Flask and waitress with their bytecode (python3-http and python3-flask), the requirements
// (pip install --target, keyed by
// requirements.txt, the Python version, the platform and the pip settings
// that change what resolves), the server, and the handler folder. An edit
// of handler.py changes only the last. The handler folder is compiled by
// the host's python3 at build time: a syntax error is reported with its file
// and line, a handler.py without a top-level handle is refused, and when
// the host's Python is 3.11 the bytecode ships in the layer (unchecked-hash
// .pyc files, which do not depend on file times), sparing each cold start
// the compilation. The function's own tests (tox) are not run.
package python
