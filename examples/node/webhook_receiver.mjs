// Receives mailerd's webhooks on 127.0.0.1:PORT, verifies Mailerd-Signature
// (t=UNIX,v1=HEX, HEX = HMAC-SHA256(secret, "UNIX.BODY")) and prints each verified event as one
// JSON line; anything unsigned, tampered or older than 5 minutes gets 400. No packages.
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";

const secret = process.env.WEBHOOK_SECRET;
const tolerance = 300;

export function verify(header, body, now = Date.now() / 1000) {
  const parts = Object.fromEntries(
    (header || "").split(",").map((p) => p.split("=", 2)).filter((p) => p.length === 2),
  );
  const t = Number.parseInt(parts.t, 10);
  if (!Number.isFinite(t) || Math.abs(now - t) > tolerance) return false;
  const expected = Buffer.from(createHmac("sha256", secret).update(`${t}.`).update(body).digest("hex"));
  const given = Buffer.from(parts.v1 || "");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    if (req.method !== "POST" || !verify(req.headers["mailerd-signature"], body)) {
      res.writeHead(400).end();
      return;
    }
    console.log(JSON.stringify(JSON.parse(body)));
    res.writeHead(204).end();
  });
}).listen(Number(process.argv[2]), "127.0.0.1");
