// Sends one message through mailerd's API with an Idempotency-Key, retrying timeouts, network
// errors and 5xx answers with the same key (safe: mailerd replays the first answer); then
// retries once more on purpose to show the replay. Node 18+ (fetch), no packages.
import { randomUUID } from "node:crypto";

const api = process.env.MAILERD_API.replace(/\/$/, "");
const key = process.env.MAILERD_KEY;

async function send(message, idempotencyKey, attempts = 4) {
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await fetch(`${api}/api/v1/messages`, {
        method: "POST",
        headers: {
          Authorization: `Bearer ${key}`,
          "Content-Type": "application/json",
          "Idempotency-Key": idempotencyKey,
        },
        body: JSON.stringify(message),
        signal: AbortSignal.timeout(10_000),
      });
      // 409: the same key is still being processed; 5xx: the server had trouble.
      if ((r.status !== 409 && r.status < 500) || attempt === attempts - 1) {
        return { status: r.status, headers: r.headers, body: await r.json() };
      }
    } catch (e) {
      if (attempt === attempts - 1) throw e;
    }
    await new Promise((done) => setTimeout(done, 500 * 2 ** attempt));
  }
}

const message = {
  from: process.env.MAIL_FROM,
  to: [process.env.MAIL_TO],
  subject: "Hello from Node",
  text: "Sent with an idempotency key.",
  tags: ["example"],
};
const idempotencyKey = `node-${randomUUID()}`;
const first = await send(message, idempotencyKey);
if (first.status !== 202) {
  console.log(JSON.stringify({ status: first.status, error: first.body }));
  process.exit(1);
}
const again = await send(message, idempotencyKey);
const out = {
  id: first.body.id,
  message_id: first.body.message_id,
  retry_id: again.body.id,
  replayed: again.headers.get("idempotent-replayed"),
};
console.log(JSON.stringify(out));
process.exit(out.retry_id === out.id && out.replayed === "true" ? 0 : 1);
