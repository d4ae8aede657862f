"""kiln's entry point for functions of OpenFaaS's classic python3 template
(lang python3 and python), written from its contract.

The classic watchdog starts "python3 index.py" once per request, with the
request body on stdin. function/handler.py's handle(req) is called with the
body as a str, and what it returns, unless None, is printed with a newline:
stdout is the response body. An exception prints its traceback on stderr
and exits 1, which the watchdog answers with 500.
"""

import os
import site
import sys

# pip installs the function's requirements here; see index.py.
PACKAGES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "packages")


def main():
    if os.path.isdir(PACKAGES):
        site.addsitedir(PACKAGES)
    from function import handler

    ret = handler.handle(sys.stdin.read())
    if ret is not None:
        print(ret)


if __name__ == "__main__":
    main()
