"""Shows moto 5.2.5's SQS losing messages under concurrent requests, and the wrapper's lock
preventing it (docs/benchmarks.md, the long chaos run).

    .venv/bin/python scripts/moto-sqs-race.py <wrapper.py>

Loads the given `ballast-moto-server.py` (the current one, or an older copy from git) for its
patches, then races, in one process, the two code paths the moto server runs on separate
request threads: `Queue.delete_message` (which rebuilds the queue's message list by iterating
it) against the in-place `list.remove` a ReceiveMessage makes when it redrives messages to the
DLQ (taken under the wrapper's `_SQS` lock when the wrapper has one, as its ReceiveMessage
does). 200 messages are touched by neither; the script prints how many of them vanished.
"""
import importlib.util
import sys
import threading

sys.setswitchinterval(1e-6)
spec = importlib.util.spec_from_file_location("wrapper", sys.argv[1])
wrapper = importlib.util.module_from_spec(spec)
spec.loader.exec_module(wrapper)
from moto.sqs.models import sqs_backends  # noqa: E402

backend = sqs_backends["123456789012"]["us-east-1"]
lock = getattr(wrapper, "_SQS", None)
total = 0
for round in range(3):
    queue = backend.create_queue(f"race-{round}")
    for i in range(2000):
        backend.send_message(queue.name, f"m{i}")
    received = []
    while len(received) < 2000:
        received += backend.receive_message(queue.name, 10, 0, 3600)
    messages = list(queue._messages)
    deleted = [m.receipt_handle for m in received[::2]][:900]
    deleted_set = set(deleted)
    removed = [m for m in messages if m.receipt_handle not in deleted_set][:900]
    removed_ids = {id(m) for m in removed}
    untouched = {
        id(m) for m in messages if id(m) not in removed_ids and m.receipt_handle not in deleted_set
    }

    def delete():
        for handle in deleted:
            queue.delete_message(handle)

    def redrive():
        for message in removed:
            if lock:
                lock.acquire()
            try:
                queue._messages.remove(message)
            except ValueError:
                pass
            finally:
                if lock:
                    lock.release()

    threads = [threading.Thread(target=delete), threading.Thread(target=redrive)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lost = len(untouched - {id(m) for m in queue._messages})
    print(f"round {round}: {lost} of {len(untouched)} untouched messages lost")
    total += lost
print(f"lost in total: {total}")
