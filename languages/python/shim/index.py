"""kiln's server for OpenFaaS Python functions.

It serves function/handler.py the way the python3-http and python3-flask
templates do, with the standard library only: no Flask, no waitress, so an
image carries nothing the function did not ask for.

    python3 index.py http     handle(event, context) -> dict, str, ...
    python3 index.py flask    handle(req) -> str, bytes, dict, tuples
    python3 index.py classic  handle(req), as flask, for python3-http's methods

It listens on 127.0.0.1 and the port in env http_port (default 5000),
behind kiln's watchdog. A handler's exception is a 500 whose traceback goes
to stderr, never to the caller.
"""

import datetime
import email.utils
import http.server
import json
import os
import site
import sys
import traceback
import urllib.parse

# pip installs the function's requirements here. addsitedir appends it
# after the standard library (PYTHONPATH would put it before, letting a
# backport shadow a stdlib module) and reads its .pth files.
PACKAGES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "packages")

HTTP_METHODS = ("GET", "PUT", "POST", "PATCH", "DELETE")
FLASK_METHODS = ("GET", "POST")

# Flask's default for a str or bytes return value.
DEFAULT_TYPE = "text/html; charset=utf-8"
JSON_TYPE = "application/json"


def converted(value, type, default):
    """Werkzeug's get(..., type=): value as type, else default."""
    if type is None:
        return value
    try:
        return type(value)
    except (ValueError, TypeError):
        return default


class Headers:
    """Request headers as Flask's request.headers shows them under
    waitress: one entry per name, title-cased as Werkzeug names environ
    keys, with a repeated header's values joined by ", " (waitress joins
    Cookie so too); looked up without regard to case."""

    def __init__(self, pairs):
        self._map = {}
        for k, v in pairs:
            v = v.strip(" \t")
            seen = self._map.get(k.lower())
            self._map[k.lower()] = (seen[0], seen[1] + ", " + v) if seen else (k.title(), v)

    def get(self, name, default=None, type=None):
        return converted(self[name], type, default) if name in self else default

    def getlist(self, name):
        return [self[name]] if name in self else []

    def __getitem__(self, name):
        try:
            return self._map[name.lower()][1]
        except KeyError:
            raise KeyError(name) from None

    def __contains__(self, name):
        return name.lower() in self._map

    def __iter__(self):
        return iter(self.items())

    def __len__(self):
        return len(self._map)

    def keys(self):
        return [k for k, _ in self._map.values()]

    def values(self):
        return [v for _, v in self._map.values()]

    def items(self):
        return list(self._map.values())

    def to_dict(self):
        return dict(self._map.values())

    def __repr__(self):
        return "Headers(%r)" % (self.items(),)


class Query(dict):
    """Query arguments as Werkzeug's ImmutableMultiDict: a read-only dict
    of each name's first value, which json.dumps and iteration see, with
    getlist for all of them."""

    def __init__(self, pairs):
        self._lists = {}
        for k, v in pairs:
            self._lists.setdefault(k, []).append(v)
        super().__init__((k, vs[0]) for k, vs in self._lists.items())

    def _immutable(self, *args, **kwargs):
        # As request.args; a change would also part the dict from getlist.
        raise TypeError("'Query' objects are immutable")

    __setitem__ = __delitem__ = __ior__ = setdefault = update = pop = popitem = clear = _immutable

    def get(self, name, default=None, type=None):
        return converted(self[name], type, default) if name in self else default

    def getlist(self, name, type=None):
        values = self._lists.get(name, [])
        if type is None:
            return list(values)
        out = []
        for v in values:
            try:
                out.append(type(v))
            except (ValueError, TypeError):
                pass
        return out

    def items(self, multi=False):
        if multi:
            return [(k, v) for k, vs in self._lists.items() for v in vs]
        return super().items()

    def lists(self):
        return [(k, list(vs)) for k, vs in self._lists.items()]

    def to_dict(self, flat=True):
        return dict(self) if flat else dict(self.lists())


class Event:
    """What python3-http's handle(event, context) gets."""

    def __init__(self, body, headers, method, query, path):
        self.body = body
        self.headers = headers
        self.method = method
        self.query = query
        self.path = path


class Context:
    def __init__(self):
        self.hostname = os.getenv("HOSTNAME", "localhost")


class Response:
    def __init__(self, status=200, body=b"", headers=None):
        self.status = status
        self.body = body
        self.headers = headers if headers is not None else []


def json_default(o):
    """Encodes what Flask's DefaultJSONProvider adds to json."""
    if isinstance(o, datetime.date):
        # Werkzeug's http_date: a naive datetime or a date is taken as UTC.
        if not isinstance(o, datetime.datetime):
            o = datetime.datetime.combine(o, datetime.time())
        utc = datetime.timezone.utc
        o = o.replace(tzinfo=utc) if o.tzinfo is None else o.astimezone(utc)
        return email.utils.format_datetime(o, usegmt=True)
    # Imported here, not at the top, which would slow every start: a
    # handler that returns their objects has imported them already.
    import dataclasses
    import decimal
    import uuid

    if isinstance(o, (decimal.Decimal, uuid.UUID)):
        return str(o)
    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)
    if hasattr(o, "__html__"):
        return str(o.__html__())
    raise TypeError("Object of type %s is not JSON serializable" % type(o).__name__)


def json_body(value):
    # As Flask's jsonify: compact, sorted keys, a final newline.
    return (json.dumps(value, separators=(",", ":"), sort_keys=True, default=json_default) + "\n").encode("utf-8")


def header_pairs(headers):
    """Reads a view's headers as Flask does: a mapping's list, tuple or set
    value is several headers of that name; any other value is str()'d."""
    if headers is None:
        return []
    if not callable(getattr(headers, "items", None)):
        return [(str(k), str(v)) for k, v in headers]
    pairs = []
    for k, v in headers.items():
        for one in v if isinstance(v, (list, tuple, set)) else [v]:
            pairs.append((str(k), str(one)))
    return pairs


def check_headers(pairs):
    """Raises ValueError for a header that cannot be sent: CR or LF would
    let the handler start headers of its own (Werkzeug and waitress refuse
    them), and waitress encodes headers as Latin-1."""
    for k, v in pairs:
        line = "%s: %s" % (k, v)
        if "\r" in line or "\n" in line:
            raise ValueError("header %r: names and values must not contain CR or LF" % k)
        line.encode("latin-1")


def status_code(status):
    # Flask takes an int or a str such as "201 CREATED".
    if isinstance(status, int):
        return status
    return int(str(status).split(None, 1)[0])


def flask_response(rv):
    """Turns a view's return value into a Response the way Flask does."""
    status, headers = None, []
    if isinstance(rv, tuple):
        if len(rv) == 3:
            rv, status, headers = rv
        elif len(rv) == 2:
            # (body, headers) when the second is a mapping, a list or a tuple.
            if isinstance(rv[1], (dict, list, tuple)) or hasattr(rv[1], "items"):
                rv, headers = rv
            else:
                rv, status = rv
        else:
            raise TypeError("a view's tuple must be (body, status, headers), (body, status) or (body, headers)")
    if rv is None:
        raise TypeError("the function returned None, which Flask does not accept as a response")
    if isinstance(rv, Response):
        resp = rv
    elif isinstance(rv, (bytes, bytearray)):
        resp = Response(body=bytes(rv), headers=[("Content-Type", DEFAULT_TYPE)])
    elif isinstance(rv, str):
        resp = Response(body=rv.encode("utf-8"), headers=[("Content-Type", DEFAULT_TYPE)])
    elif isinstance(rv, (dict, list)):
        resp = Response(body=json_body(rv), headers=[("Content-Type", JSON_TYPE)])
    elif hasattr(rv, "__iter__"):
        # A generator: Flask streams it; here it is joined.
        parts = [p.encode("utf-8") if isinstance(p, str) else bytes(p) for p in rv]
        resp = Response(body=b"".join(parts), headers=[("Content-Type", DEFAULT_TYPE)])
    else:
        raise TypeError("the function returned a %s, which is not a valid response" % type(rv).__name__)
    if status is not None:
        resp.status = status_code(status)
    extra = header_pairs(headers)
    if extra:
        replaced = {k.lower() for k, _ in extra}
        resp.headers = [(k, v) for k, v in resp.headers if k.lower() not in replaced] + extra
    return resp


def http_response(rv):
    """Turns python3-http's return value into a Response: a dict with
    statusCode, body and headers; None is an empty 200; anything else is
    taken as Flask would take it."""
    if rv is None:
        return Response(headers=[("Content-Type", DEFAULT_TYPE)])
    if not isinstance(rv, dict):
        return flask_response(rv)
    headers = rv.get("headers")
    # Upstream's format_headers turns a dict into pairs before Flask sees
    # it, so a list value is str()'d there, not made several headers.
    if type(headers) is dict:
        headers = list(headers.items())
    headers = header_pairs(headers)
    # As upstream's format_body: only a dict proper is JSON; anything
    # else, bytes and None too, is str()'d.
    if "body" not in rv:
        data, ctype = b"", DEFAULT_TYPE
    elif type(rv["body"]) is dict:
        data, ctype = json_body(rv["body"]), JSON_TYPE
    else:
        data, ctype = str(rv["body"]).encode("utf-8"), DEFAULT_TYPE
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.insert(0, ("Content-Type", ctype))
    # Flask keeps its default 200 for a status of None.
    status = rv.get("statusCode")
    return Response(status=200 if status is None else status_code(status), body=data, headers=headers)


def raw_body_wanted():
    return os.getenv("RAW_BODY", "").lower() in ("true", "1")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # The watchdog may open many connections at once under load.
    request_queue_size = 128


def make_handler(api, handle):
    allowed = FLASK_METHODS if api == "flask" else HTTP_METHODS
    allow_header = ", ".join(sorted(set(allowed) | {"HEAD", "OPTIONS"}))

    class Handler(http.server.BaseHTTPRequestHandler):
        # Keep-alive, so the watchdog can reuse its connections; every
        # answer that may have a body carries a Content-Length.
        protocol_version = "HTTP/1.1"
        server_version = "kiln-python"
        # Headers and body are two writes; with Nagle's algorithm the
        # second waits for the peer's delayed ACK, some 40 ms.
        disable_nagle_algorithm = True
        sys_version = ""

        def log_message(self, format, *args):
            # No access log: the watchdog logs requests.
            pass

        def read_body(self):
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks = []
                while True:
                    line = self.rfile.readline()
                    size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                    if size == 0:
                        # Trailers end with an empty line.
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length > 0 else b""

        def send(self, resp, head=False):
            self.send_response(resp.status)
            for k, v in resp.headers:
                if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(k, v)
            # RFC 9110: 1xx, 204 and 304 have neither body nor length, as
            # Werkzeug and waitress send them; HEAD has GET's length.
            bodiless = resp.status < 200 or resp.status in (204, 304)
            if not bodiless:
                self.send_header("Content-Length", str(len(resp.body)))
            self.end_headers()
            if not (head or bodiless):
                self.wfile.write(resp.body)

        def serve(self):
            method = self.command
            try:
                body = self.read_body()
            except (ValueError, OSError):
                self.close_connection = True
                self.send(Response(400, b"Bad Request\n", [("Content-Type", "text/plain; charset=utf-8")]))
                return
            head = method == "HEAD"
            if method == "OPTIONS":
                self.send(Response(200, b"", [("Allow", allow_header), ("Content-Type", DEFAULT_TYPE)]))
                return
            if not head and method not in allowed:
                self.send(Response(405, b"Method Not Allowed\n", [("Allow", allow_header), ("Content-Type", "text/plain; charset=utf-8")]))
                return
            url = urllib.parse.urlsplit(self.path)
            path = urllib.parse.unquote(url.path) or "/"
            query = Query(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            headers = Headers(self.headers.items())
            try:
                if api == "http":
                    event = Event(body, headers, method, query, path)
                    resp = http_response(handle(event, Context()))
                else:
                    req = body if raw_body_wanted() else body.decode("utf-8", "replace")
                    resp = flask_response(handle(req))
                # Nothing is written until the whole head is known to be
                # sendable: a failure half way would cut the reply short.
                check_headers(resp.headers)
            except Exception:
                traceback.print_exc(file=sys.stderr)
                sys.stderr.flush()
                resp = Response(500, b"Internal Server Error\n", [("Content-Type", "text/plain; charset=utf-8")])
            self.send(resp, head=head)

        def __getattr__(self, name):
            # Every method reaches serve, which answers 405 for those not
            # routed, as Flask does, rather than http.server's 501.
            if name.startswith("do_"):
                return self.serve
            raise AttributeError(name)

    return Handler


def load_handler():
    if os.path.isdir(PACKAGES):
        site.addsitedir(PACKAGES)
    from function import handler

    if not callable(getattr(handler, "handle", None)):
        raise SystemExit("function/handler.py defines no handle function")
    return handler.handle


def main(argv):
    # OpenFaaS deploys send the template's "python index.py" as fprocess:
    # the image's environment then says which contract the handler follows.
    api = argv[1] if len(argv) > 1 else os.getenv("KILN_PYTHON_API", "http")
    if api not in ("http", "flask", "classic"):
        raise SystemExit("usage: index.py http|flask|classic")
    handle = load_handler()
    port = int(os.getenv("http_port") or 5000)
    server = Server(("127.0.0.1", port), make_handler(api, handle))
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main(sys.argv)
