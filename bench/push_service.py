"""The loopback push service as its own process, so it does not share a core's GIL with
the sender being measured. Creates N subscriptions, writes them as JSON, then serves;
on stdin `dump PATH` writes what it received, `quit` stops it.

    python -m bench.push_service N SUBSCRIPTIONS_JSON
"""

from __future__ import annotations

import json
import sys

from push.testing_service import LoopbackPushService


def main() -> None:
    count, out = int(sys.argv[1]), sys.argv[2]
    service = LoopbackPushService().start()
    subs = [service.new_subscription() for _ in range(count)]
    with open(out, "w") as fh:
        json.dump(
            {
                "origin": service.origin,
                "subscriptions": [
                    {"endpoint": s.endpoint, "p256dh": s.p256dh, "auth": s.auth} for s in subs
                ],
            },
            fh,
        )
    print("ready", flush=True)
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "count":
            print(len(service.messages), len(service.rejections), flush=True)
        elif command == "dump":
            with open(arg, "w") as fh:
                json.dump(
                    [{"tag": m.notification().tag, "at": m.received_at} for m in service.messages],
                    fh,
                )
            print("dumped", flush=True)
        elif command == "quit":
            break
    service.stop()


if __name__ == "__main__":
    main()
