"""Compile the standard library modules kiln's server imports, from the
image's own sources, into the image's bytecode caches.

    python3 -I stdlib.py SOURCES.json SERVER OUT

SOURCES.json maps paths relative to the standard library (http/server.py)
to files holding the image's copies. The server script is loaded, which
imports what every function's start imports, and each of those modules
found in SOURCES is compiled to OUT/<dir>/__pycache__/<name>.<tag>.pyc as
unchecked-hash bytecode, which does not depend on file times. The paths
written are printed, relative to OUT, one a line.
"""

import importlib.util
import json
import os
import py_compile
import sys
import sysconfig


def main(argv):
    with open(argv[1]) as f:
        sources = json.load(f)
    server, out = argv[2], argv[3]
    spec = importlib.util.spec_from_file_location("kiln_server", server)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # its imports only: main() is guarded
    stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"])
    imported = set()
    for m in list(sys.modules.values()):
        path = getattr(m, "__file__", None)
        if not path or not path.endswith(".py"):
            continue
        path = os.path.realpath(path)
        if path.startswith(stdlib + os.sep):
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


if __name__ == "__main__":
    main(sys.argv)
