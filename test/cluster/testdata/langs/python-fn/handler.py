def handle(event, context):
    return {"statusCode": 200, "body": "Hello from Python, built in a Job", "headers": {"X-Kiln-Sample": "cluster"}}
