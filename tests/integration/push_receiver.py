#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A push-notification receiver for the integration tests.

Serves HTTPS on 127.0.0.1 (port 0 = pick one) with the harness's server
certificate, records every POST as one JSON line in OUT_FILE
({"path", "headers", "body"}), answers 200, and prints its port on stdout.
It exits after MAX_SECONDS so a failed test can never leave it behind.
"""
import http.server
import json
import ssl
import sys
import threading


def main():
    cert, key, out_file, max_seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            if self.path == "/_quit":
                # the test is done with it: stop before max_seconds
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                threading.Thread(target=srv.shutdown).start()
                return
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n).decode("utf-8", "replace")
            rec = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                   "body": body}
            with open(out_file, "a", encoding="utf-8") as fp:
                fp.write(json.dumps(rec) + "\n")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print(srv.server_address[1], flush=True)
    threading.Timer(max_seconds, srv.shutdown).start()
    srv.serve_forever()


if __name__ == "__main__":
    main()
