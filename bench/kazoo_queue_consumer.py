"""kazoo's own LockingQueue as one consumer, for the queue benchmark's baseline.

Usage: kazoo_queue_consumer.py HOSTS QUEUE_PATH SECONDS
Prints {"type":"ready"} once connected, waits for a line on stdin, then runs get()+consume() for
SECONDS and prints {"type":"done","consumed":N,"seconds":S}. Exits by itself.
"""
import json
import sys
import time

from kazoo.client import KazooClient


def main():
    hosts, path, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    client = KazooClient(hosts=hosts, timeout=10.0)
    client.start(timeout=15)
    queue = client.LockingQueue(path)
    print(json.dumps({"type": "ready"}), flush=True)
    sys.stdin.readline()
    consumed = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        value = queue.get(timeout=0.5)
        if value is None:
            continue
        queue.consume()
        consumed += 1
    elapsed = time.monotonic() - started
    print(json.dumps({"type": "done", "consumed": consumed, "seconds": elapsed}), flush=True)
    client.stop()
    client.close()


if __name__ == "__main__":
    main()
