"""Compile the standard library modules kiln's entry points import, from
the image's own sources, into the image's bytecode caches.

    python3 -I stdlib.py SOURCES.json OUT KIND=APP...

SOURCES.json maps paths relative to the standard library (http/server.py)
to files holding the image's copies. Each APP is a folder laid out as the
image's /home/app (index.py, function/, server-packages/) whose index.py
is run in a process of its own, as the image runs it, until a point that
does not depend on timing:

    server   index.py http serves, answers one GET / (which imports what
             Flask imports lazily at the first request), then gets SIGINT,
             on which waitress stops its loop and joins its threads
    classic  index.py answers one request read from stdin, and returns

The standard library modules loaded by then (sys.modules), but for those
frozen in the interpreter, that SOURCES holds are compiled to OUT/<dir>/__pycache__/<name>.<tag>.pyc as
unchecked-hash bytecode, which does not depend on file times. The paths
written are printed, relative to OUT, one a line.
"""

# The child that runs an entry point loads this file too: what the module
# imports at its top is counted as the entry point's, so only os and sys,
# which every Python start loads.
import os
import sys

# How long an entry point may take to start and answer.
TIMEOUT = 60


def main(argv):
    import json
    import py_compile
    import sysconfig

    with open(argv[1]) as f:
        sources = json.load(f)
    out = argv[2]
    stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"])
    imported = set()
    for arg in argv[3:]:
        kind, app = arg.split("=", 1)
        for path in probe(kind, app):
            path = os.path.realpath(path)
            if path.endswith(".py") and path.startswith(stdlib + os.sep):
                rel = os.path.relpath(path, stdlib)
                if not rel.startswith("site-packages" + os.sep):
                    imported.add(rel)
    for rel in sorted(imported):
        src = sources.get(rel)
        if src is None:
            continue
        folder, name = os.path.split(rel)
        cfile = os.path.join(out, folder, "__pycache__", name[:-3] + "." + sys.implementation.cache_tag + ".pyc")
        py_compile.compile(src, cfile=cfile, dfile="/usr/lib/python%d.%d/%s" % (sys.version_info[0], sys.version_info[1], rel),
                           doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        print(os.path.relpath(cfile, out))


def probe(kind, app):
    """Runs app's entry point in a child and returns the files of the
    modules it loaded."""
    import json
    import subprocess

    report = os.path.join(app, ".kiln-modules.json")
    # -I as the parent; the child puts app first on sys.path itself, as
    # "python3 index.py" does. -S: the host's site-packages and their .pth
    # files (setuptools' hook, certifi) are not the image's; the entry
    # points import site themselves.
    cmd = [sys.executable, "-I", "-S", "-B", os.path.abspath(__file__), "--probe", kind, app, report]
    res = subprocess.run(cmd, cwd=app, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=TIMEOUT)
    if res.returncode != 0:
        raise SystemExit("running %s's index.py to learn its imports: exit %d\n%s" % (kind, res.returncode, res.stdout.decode(errors="replace")))
    with open(report) as f:
        return json.load(f)


def run_probe(kind, app, report):
    """In the child: runs app/index.py as __main__ and writes the files of
    sys.modules to report."""
    index = os.path.join(app, "index.py")
    sys.path.insert(0, app)
    if kind == "server":
        serve_once(index)
    elif kind == "classic":
        import io

        sys.argv = [index]
        sys.stdin = io.StringIO("kiln")
        run_main(index)
    else:
        raise SystemExit("unknown kind %r" % kind)
    files = sorted({m.__file__ for m in list(sys.modules.values()) if isinstance(getattr(m, "__file__", None), str) and not frozen(m)})
    import json

    with open(report, "w") as f:
        json.dump(files, f)


def frozen(module):
    """Reports whether module is one of those CPython keeps in the
    interpreter itself (os, site, codecs, ...), as Debian's python3.11
    does: no bytecode file is read for them."""
    spec = getattr(module, "__spec__", None)
    return getattr(spec, "origin", None) == "frozen"


def run_main(index):
    """Runs index as "python3 index" does: runpy would load pkgutil,
    zipfile and more that the entry point does not."""
    with open(index, "rb") as f:
        code = compile(f.read(), index, "exec")
    exec(code, {"__name__": "__main__", "__file__": index, "__builtins__": __builtins__})


def serve_once(index):
    import signal
    import socket
    import threading
    import time

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    os.environ["http_port"] = str(port)
    sys.argv = [index, "http"]
    main_thread = threading.get_ident()
    failed = []

    def client():
        deadline = time.monotonic() + TIMEOUT
        try:
            while True:
                try:
                    conn = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)
            with conn:
                conn.sendall(b"GET / HTTP/1.1\r\nHost: kiln\r\nConnection: close\r\n\r\n")
                answer = b""
                while True:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    answer += chunk
            if not answer.startswith(b"HTTP/1.1 200 "):
                failed.append("GET / answered %r" % answer[:200])
        except Exception as e:  # reported after the server stops
            failed.append("GET /: %r" % e)
        # At the main thread, so that its poll returns at once: waitress
        # then shuts its task threads down and serve returns.
        signal.pthread_kill(main_thread, signal.SIGINT)

    t = threading.Thread(target=client, daemon=True)
    t.start()
    run_main(index)
    t.join()
    if failed:
        raise SystemExit(failed[0])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--probe"]:
        run_probe(*sys.argv[2:5])
    else:
        main(sys.argv)
