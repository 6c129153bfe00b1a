#!/usr/bin/env python3
"""Sends one message through mailerd's API with an Idempotency-Key, retrying timeouts, connection
errors and 5xx answers with the same key (safe: mailerd replays the first answer); then retries
once more on purpose to show the replay. Needs requests."""
import json
import os
import sys
import time
import uuid

import requests

API = os.environ["MAILERD_API"].rstrip("/")
KEY = os.environ["MAILERD_KEY"]


def send(message, idempotency_key, attempts=4):
    """POSTs `message`; returns (status, headers, body). Retries what is safe to retry."""
    headers = {"Authorization": f"Bearer {KEY}", "Idempotency-Key": idempotency_key}
    for attempt in range(attempts):
        try:
            r = requests.post(f"{API}/api/v1/messages", json=message, headers=headers, timeout=10)
        except (requests.Timeout, requests.ConnectionError):
            if attempt == attempts - 1:
                raise
        else:
            # 409: the same key is still being processed; 5xx: the server had trouble.
            if r.status_code != 409 and r.status_code < 500:
                return r.status_code, r.headers, r.json()
        time.sleep(0.5 * 2**attempt)
    return r.status_code, r.headers, r.json()


def main():
    message = {
        "from": os.environ["MAIL_FROM"],
        "to": [os.environ["MAIL_TO"]],
        "subject": "Hello from Python",
        "text": "Sent with an idempotency key.",
        "tags": ["example"],
    }
    key = f"python-{uuid.uuid4()}"
    status, _, first = send(message, key)
    if status != 202:
        print(json.dumps({"status": status, "error": first}))
        return 1
    status, headers, again = send(message, key)
    out = {
        "id": first["id"],
        "message_id": first["message_id"],
        "retry_id": again.get("id"),
        "replayed": headers.get("Idempotent-Replayed"),
    }
    print(json.dumps(out))
    return 0 if out["retry_id"] == out["id"] and out["replayed"] == "true" else 1


if __name__ == "__main__":
    sys.exit(main())
