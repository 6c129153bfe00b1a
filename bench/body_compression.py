#!/usr/bin/env python3
"""How much message bodies would shrink, and at what cost, if the SQLite store compressed them
(stop 37, not built): lz4 and zstd (levels 1 and -1) over the labelled bounce corpus's messages
and over about 2 KB of prose built as the API builds a send, with µs per message.

    pip install lz4 zstandard; python3 bench/body_compression.py [CORPUS_DIR]

CORPUS_DIR defaults to ../shared/corpus/bounces beside the project."""
import glob
import os
import sys
import time

import lz4.block
import zstandard

PROSE = (
    "We have received your order and our team is getting it ready. You will find the details below, "
    "together with a few notes on delivery, returns and how to reach us if anything looks wrong. "
    "Delivery: parcels leave our warehouse on the next working day and usually arrive within two to "
    "four days. When the carrier collects your parcel we send a second message with a tracking link. "
    "If nobody is at home, the driver leaves a card and tries again the following day, or you can "
    "collect it from the nearest pick-up point within a week. Returns: if something does not fit or "
    "is not what you expected, you can send it back within thirty days of delivery. Please keep the "
    "original packaging where you can, fill in the slip enclosed with the parcel, and drop it at any "
    "post office. Refunds reach the card you paid with within five working days of our receiving the "
    "return. Changes: if you need to change the delivery address or add an item, reply to this "
    "message within the next two hours and quote your order number. Your account: you can see this "
    "order, download an invoice and manage your saved addresses once you sign in. We never ask for "
    "your password or card number by email. Thank you for shopping with us; our customer service "
    "desk is open Monday to Saturday and most messages are answered the same day.\r\n"
)
HEADER = ("Received: from api\r\n\tby mx.bench.test (mailerd) with HTTP id 019AB000000000000001; "
          "Mon, 7 Dec 2026 15:00:00 +0000\r\nFrom: <app@sender.test>\r\nTo: <user1@rcpt.test>\r\n"
          "Subject: order 1\r\nMessage-ID: <019ab000000000000001@sender.test>\r\n"
          "Date: Mon, 7 Dec 2026 15:00:00 +0000\r\nMIME-Version: 1.0\r\n"
          "Content-Type: text/plain; charset=\"utf-8\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n")


def measure(name, bodies):
    total = sum(map(len, bodies))
    codecs = [("lz4", lz4.block.compress), ("zstd 1", zstandard.ZstdCompressor(level=1).compress),
              ("zstd -1", zstandard.ZstdCompressor(level=-1).compress)]
    for codec, compress in codecs:
        rounds = max(1, 20000 // len(bodies))
        started = time.perf_counter()
        for _ in range(rounds):
            for b in bodies:
                compress(b)
        per = (time.perf_counter() - started) / (rounds * len(bodies))
        ratio = sum(len(compress(b)) for b in bodies) / total
        print(f"{name:28s} {codec:8s} ratio {ratio:.2f}  {per * 1e6:6.1f} µs per message")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    corpus = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "shared", "corpus", "bounces")
    bodies = [open(f, "rb").read() for f in sorted(glob.glob(os.path.join(corpus, "*.eml")))]
    if bodies:
        measure(f"corpus ({len(bodies)} messages)", bodies)
    prose = (HEADER + PROSE).encode()
    measure(f"API prose ({len(prose)} bytes)", [prose])


if __name__ == "__main__":
    main()
