import json

from kiln_greeting import greet


def handle(event, context):
    headers = {"X-Kiln-Sample": "python-http"}
    if event.path == "/created":
        return {"statusCode": 201, "body": "created", "headers": headers}
    if event.method == "GET":
        name = event.query.get("name", "kiln")
        return {"statusCode": 200, "body": greet(name), "headers": headers}
    if "json" in event.headers.get("Content-Type", ""):
        data = json.loads(event.body)
        return {"statusCode": 200, "body": {"greeting": greet(data.get("name", "kiln")), "received": data}, "headers": headers}
    return {"statusCode": 200, "body": greet("kiln") + ", you said: " + event.body.decode(), "headers": headers}
