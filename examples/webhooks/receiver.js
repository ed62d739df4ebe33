// A webhook receiver that verifies the gateway's deliveries with the `standardwebhooks` library
// (npm install standardwebhooks). WEBHOOK_SECRET is the endpoint's `whsec_…` secret; PORT the
// port to listen on (0 picks a free one).
const http = require("node:http");
const { Webhook } = require("standardwebhooks");

const webhook = new Webhook(process.env.WEBHOOK_SECRET);
const seen = new Set(); // event ids already handled: deliveries are at least once

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    let event;
    try {
      // Checks webhook-signature over the raw body, and that webhook-timestamp is within
      // 5 minutes; answers the parsed event.
      event = webhook.verify(body, req.headers);
    } catch (e) {
      res.writeHead(400).end();
      console.log(JSON.stringify({ rejected: e.message }));
      return;
    }
    if (!seen.has(event.id)) {
      seen.add(event.id);
      console.log(JSON.stringify({ verified: event.id, type: event.type }));
    }
    res.writeHead(204).end(); // any 2xx acknowledges the event
  });
});

server.listen(Number(process.env.PORT ?? 8000), "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
