from flask import Response, request, stream_with_context


def handle(req):
    """A python3-flask handler that reads Flask's request, as the
    template's handlers may, and streams its answer."""
    if request.args.get("stream"):
        def chunks():
            for i in range(3):
                yield "chunk %d from %s\n" % (i, request.method)

        return Response(stream_with_context(chunks()), mimetype="text/plain")
    return "%s %s name=%s body=%s" % (request.method, request.path, request.args.get("name", ""), req)
