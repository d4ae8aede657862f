from kiln_greeting import greet


def handle(req):
    """A function of OpenFaaS's classic python3 template: req is the
    request body as a str; the return value is printed."""
    if req == "":
        return greet("kiln")
    if req == "nothing":
        return None
    if req == "fail":
        raise ValueError("failing as asked")
    return greet("kiln") + ", you said: " + req
