#!/usr/bin/env python3
"""demo_receiver.py PORT LOG: a loopback webhook receiver for `make demo`.
Answers 204 to every POST and appends one line per request to LOG: the
webhook-id, the batch headers connrun sends with batched delivery, and the
number of events in the body."""
import http.server
import json
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            n = len(json.loads(body))
        except ValueError:
            n = body.count(b"\n")
        with open(sys.argv[2], "a") as log:
            log.write("%.3f %s first=%s last=%s count=%s events-in-body=%d signed=%s\n" % (
                __import__("time").time(), self.headers.get("webhook-id"),
                self.headers.get("connrun-batch-first-id"),
                self.headers.get("connrun-batch-last-id"),
                self.headers.get("connrun-batch-count"), n,
                "yes" if self.headers.get("webhook-signature") else "no"))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
