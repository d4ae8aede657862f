"""kiln's build-time check of a Python handler folder, run by the host's
python3 before the code layer is written.

    python3 check.py ROOT DEST OUT < files.json

files.json lists the .py files (slash-separated, relative to ROOT). Each is
compiled: a syntax error is reported with its file and line. handler.py must
define handle at the top level; this is read from its syntax tree, so the
handler is never imported (it may need packages the host lacks). When OUT is
not empty, bytecode is written under it, as ROOT/x.py would have it in
x/__pycache__, with DEST (the folder's path in the image) as the file name
its tracebacks show and an unchecked hash, so that it does not depend on
file times and the same source gives the same bytes.

One JSON object is printed: {"errors": [...], "handle": bool}.
"""

import ast
import importlib.util
import json
import os
import py_compile
import sys


def defines_handle(tree):
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "handle":
            return True
        if isinstance(node, ast.Assign):
            if any(isinstance(t, ast.Name) and t.id == "handle" for t in node.targets):
                return True
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if any((a.asname or a.name) == "handle" for a in node.names):
                return True
    return False


def main(argv):
    root, dest, out = argv[1], argv[2], argv[3]
    files = json.load(sys.stdin)
    errors, handle = [], False
    for rel in files:
        path = os.path.join(root, rel)
        with open(path, "rb") as f:
            source = f.read()
        try:
            tree = compile(source, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
            compile(tree, path, "exec", dont_inherit=True)
        except SyntaxError as e:
            text = (e.text or "").rstrip("\n")
            errors.append({"path": rel, "line": e.lineno or 0, "msg": e.msg, "text": text, "offset": e.offset or 0})
            continue
        except ValueError as e:
            errors.append({"path": rel, "line": 0, "msg": str(e), "text": "", "offset": 0})
            continue
        if rel == "handler.py":
            handle = defines_handle(tree)
        if out:
            cfile = importlib.util.cache_from_source(os.path.join(out, rel))
            py_compile.compile(path, cfile=cfile, dfile=dest + "/" + rel, doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    json.dump({"errors": errors, "handle": handle}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv)
