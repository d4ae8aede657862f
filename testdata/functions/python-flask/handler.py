import json

from kiln_greeting import greet


def handle(req):
    headers = {"X-Kiln-Sample": "python-flask"}
    if req == "":
        return greet("kiln"), 200, headers
    if req == "teapot":
        return "short and stout", 418, headers
    if req.startswith("{"):
        data = json.loads(req)
        return {"greeting": greet(data.get("name", "kiln")), "received": data}, 200, headers
    return greet("kiln") + ", you said: " + req, 200, headers
