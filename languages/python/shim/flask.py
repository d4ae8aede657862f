"""kiln's Flask server for OpenFaaS Python functions, written from the
python3-http and python3-flask templates' contract (openfaas-contracts.md
§2.4, §2.5): the handler runs inside a Flask request context, so
"from flask import request, Response" and streamed responses work as they
do under the templates.

    python3 index.py http     handle(event, context) -> dict, None, or a Flask return value
    python3 index.py flask    handle(req) -> a Flask return value

Flask and waitress come from their own layer (server-packages), the
function's requirements from packages. It listens on 127.0.0.1 and the
port in env http_port (default 5000), behind kiln's watchdog.
"""

import os
import site
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# The function's requirements, then kiln's Flask and waitress: addsitedir
# appends, after the standard library, and reads .pth files.
SITE_DIRS = (os.path.join(HERE, "packages"), os.path.join(HERE, "server-packages"))

HTTP_METHODS = ["GET", "PUT", "POST", "PATCH", "DELETE"]
FLASK_METHODS = ["GET", "POST"]


class Event:
    """What python3-http's handle(event, context) gets."""

    def __init__(self, request):
        self.body = request.get_data()
        self.headers = request.headers
        self.method = request.method
        self.query = request.args
        self.path = request.path


class Context:
    def __init__(self):
        self.hostname = os.getenv("HOSTNAME", "localhost")


def http_response(res, jsonify):
    """Turns python3-http's return value into what Flask takes: a dict
    with statusCode, body (a dict is JSON, anything else str()'d) and
    headers (a dict or pairs); None is an empty 200; anything else goes to
    Flask as it is."""
    if res is None:
        return ("", 200)
    if type(res) is not dict:
        return res
    status = res.get("statusCode", 200)
    if "body" not in res:
        body = ""
    elif type(res["body"]) is dict:
        body = jsonify(res["body"])
    else:
        body = str(res["body"])
    headers = res.get("headers", [])
    if type(headers) is dict:
        headers = list(headers.items())
    return (body, status, headers)


def is_true(value):
    return value.lower() in ("true", "1")


def make_app(api, handle):
    from flask import Flask, jsonify, request

    app = Flask("function")

    @app.before_request
    def chunked_input():
        # A chunked body has no length: tell Werkzeug the server ends it.
        if request.headers.get("Transfer-Encoding", "") == "chunked":
            request.environ["wsgi.input_terminated"] = True

    methods = HTTP_METHODS if api == "http" else FLASK_METHODS

    @app.route("/", defaults={"path": ""}, methods=methods)
    @app.route("/<path:path>", methods=methods)
    def call_handler(path):
        if api == "http":
            return http_response(handle(Event(request), Context()), jsonify)
        return handle(request.get_data(as_text=not is_true(os.getenv("RAW_BODY", "false"))))

    return app


def main(argv):
    # OpenFaaS deploys send the template's "python index.py" as fprocess:
    # the image's environment then says which contract the handler follows.
    api = argv[1] if len(argv) > 1 else os.getenv("KILN_PYTHON_API", "http")
    if api not in ("http", "flask"):
        raise SystemExit("usage: index.py http|flask")
    for d in SITE_DIRS:
        if os.path.isdir(d):
            site.addsitedir(d)
    from function import handler

    if not callable(getattr(handler, "handle", None)):
        raise SystemExit("function/handler.py defines no handle function")
    from waitress import serve

    serve(make_app(api, handler.handle), host="127.0.0.1", port=int(os.getenv("http_port") or 5000))


if __name__ == "__main__":
    main(sys.argv)
