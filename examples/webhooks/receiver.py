# A webhook receiver that verifies the gateway's deliveries with the `standardwebhooks` library
# (pip install standardwebhooks). WEBHOOK_SECRET is the endpoint's `whsec_…` secret; PORT the
# port to listen on (0 picks a free one).
import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

webhook = Webhook(os.environ["WEBHOOK_SECRET"])
seen = set()  # event ids already handled: deliveries are at least once


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        try:
            # Checks webhook-signature over the raw body, and that webhook-timestamp is
            # within 5 minutes; answers the parsed event.
            event = webhook.verify(body, dict(self.headers))
        except WebhookVerificationError as e:
            self.send_response(400)
            self.end_headers()
            print(json.dumps({"rejected": str(e)}), flush=True)
            return
        if event["id"] not in seen:
            seen.add(event["id"])
            print(json.dumps({"verified": event["id"], "type": event["type"]}), flush=True)
        self.send_response(204)  # any 2xx acknowledges the event
        self.end_headers()

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8000"))), Receiver)
print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)
server.serve_forever()
