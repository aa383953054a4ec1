"""moto_server with DynamoDB requests serialized.

moto 5.2.5's DynamoDB backend is not thread-safe: TransactWriteItems deep-copies the tables
for its rollback while other request threads write to them, fails with "dictionary changed size
during iteration" (HTTP 500), and can leave a transaction half applied. Real DynamoDB applies a
transaction atomically; handling one DynamoDB request at a time gives the emulator that
property back. Every other service keeps moto's threaded server (SQS long polls must not block
the rest).

moto's TransactWriteItems also deep-copies every table it touches, before every transaction,
to roll back on failure: a transaction costs time proportional to the table, so a test of
thousands of transactions becomes quadratic. Here the rollback snapshot holds only the items the
transaction names (what DynamoDB's atomicity is about), restored through the backend's own
put/delete if moto cancels the transaction.

SQS has the same shape: every SendMessage, and every message a ReceiveMessage returns, reads
the queue's attribute dictionary for one setting, and building it counts the queue's messages
(three times), so filling or draining a queue of thousands of messages is quadratic. Here the
counts are computed only when GetQueueAttributes asks for them.

The HTTP server is waitress instead of moto's Werkzeug development server. Werkzeug's server
answers every request with `Connection: close` (Python's http.server cannot drain a request body
before reading the next request line), so every SDK request paid a new TCP connection, about
twelve system calls and a new connection task in the client, a cost AWS's keep-alive endpoints do
not have and one that dominated the worker's measured CPU. waitress keeps HTTP/1.1 connections
open and serves them from a thread pool; one thread per request in progress, and a long poll
holds one for up to its wait, so the pool is sized far above the test bed's concurrent polls.

Same flags as moto_server (TLS and --reload fall back to Werkzeug). setup-moto.sh installs this
as .venv/bin/ballast-moto-server.
"""
import copy
import os
import threading

import moto.dynamodb.models as dynamodb_models
import moto.server as server
import moto.sqs.models as sqs_models
import waitress

_DYNAMODB = threading.Lock()
# The tagging API's GetResources walks DynamoDB's tables too.
_READS_DYNAMODB_TABLES = ("DynamoDB_", "ResourceGroupsTaggingAPI_")


class SerializedDynamoDB(server.DomainDispatcherApplication):
    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith(_READS_DYNAMODB_TABLES):
            with _DYNAMODB:
                # Drain the response inside the lock: the backend works while it is produced.
                return list(super().__call__(environ, start_response))
        return super().__call__(environ, start_response)


server.DomainDispatcherApplication = SerializedDynamoDB


class _TableCopies:
    """`copy` for moto's DynamoDB models: while `skip` is set, tables are not deep-copied."""

    skip = False

    def deepcopy(self, value, memo=None):
        if self.skip and isinstance(value, dynamodb_models.Table):
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name):
        return getattr(copy, name)


_table_copies = _TableCopies()
dynamodb_models.copy = _table_copies
_transact_write_items = dynamodb_models.DynamoDBBackend.transact_write_items


def _named_key(table, op_type, op):
    if op_type == "Put":
        attrs = op.get("Item", {})
        names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
        if not all(n in attrs for n in names):
            return None
        return {n: attrs[n] for n in names}
    return op.get("Key")


def transact_write_items(self, transact_items):
    snapshot = []
    for entry in transact_items:
        if len(entry) != 1:
            continue
        op_type, op = next(iter(entry.items()))
        table = self.tables.get(op.get("TableName"))
        key = _named_key(table, op_type, op) if table is not None else None
        if key is None:
            continue
        try:
            before = self.get_item(table.name, key)
        except Exception:  # an invalid key: moto rejects the request before writing
            continue
        snapshot.append((table.name, key, copy.deepcopy(before)))
    _table_copies.skip = True
    try:
        return _transact_write_items(self, transact_items)
    except Exception:
        for table_name, key, before in reversed(snapshot):
            if before is None:
                if self.get_item(table_name, key) is not None:
                    self.delete_item(table_name, key)
            else:
                self.put_item(table_name, before.to_json()["Attributes"])
        raise
    finally:
        _table_copies.skip = False


dynamodb_models.DynamoDBBackend.transact_write_items = transact_write_items
# moto's own handler raises SystemExit, which request threads (a long poll) can outlive;
# the test bed and the demo stop moto with SIGTERM and need it gone at once.
server.signal_handler = lambda signum, frame: os._exit(0)

_APPROXIMATE_COUNTS = {
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesDelayed",
    "ApproximateNumberOfMessagesNotVisible",
}
_counts = threading.local()
_queue_attributes = sqs_models.Queue.attributes.fget


def _attributes(queue):
    if getattr(_counts, "wanted", False):
        return _queue_attributes(queue)
    result = {}
    names = [n for n in queue.BASE_ATTRIBUTES if n not in _APPROXIMATE_COUNTS]
    if queue.fifo_queue:
        names += queue.FIFO_ATTRIBUTES
    if queue.kms_master_key_id:
        names += queue.KMS_ATTRIBUTES
    for name in names:
        result[name] = getattr(queue, sqs_models.camelcase_to_underscores(name))
    if queue.policy:
        result["Policy"] = queue.policy
    if queue.redrive_policy:
        result["RedrivePolicy"] = sqs_models.json.dumps(queue.redrive_policy)
    for key, value in result.items():
        if isinstance(value, bool):
            result[key] = str(value).lower()
    return result


sqs_models.Queue.attributes = property(_attributes)
_get_queue_attributes = sqs_models.SQSBackend.get_queue_attributes


def get_queue_attributes(self, queue_name, attribute_names):
    _counts.wanted = "All" in attribute_names or bool(_APPROXIMATE_COUNTS & set(attribute_names))
    try:
        return _get_queue_attributes(self, queue_name, attribute_names)
    finally:
        _counts.wanted = False


sqs_models.SQSBackend.get_queue_attributes = get_queue_attributes

# moto's SQS queues are not thread-safe either, and the race loses messages: DeleteMessage
# rebuilds a queue's message list by iterating it, while a ReceiveMessage on another request
# thread removes the messages it hands to the redrive from that same list in place (and appends
# them to the DLQ's list, which a DeleteMessage on the DLQ may be rebuilding). An element removed
# ahead of the rebuilding iterator makes it skip the next message, which is then missing from
# the rebuilt list: a message nobody received or deleted vanishes, and an append to a list being
# rebuilt is lost the same way. (The long chaos run lost 2 to 5 of 3000 messages so, never
# delivered to any worker.) Real SQS never loses a message; one lock around every change of a
# queue's message list gives the emulator that property back. A long poll waits outside it.
_SQS = threading.RLock()


def _locked(function):
    def locked(*args, **kwargs):
        with _SQS:
            return function(*args, **kwargs)

    return locked


sqs_models.Queue.add_message = _locked(sqs_models.Queue.add_message)
sqs_models.Queue.delete_message = _locked(sqs_models.Queue.delete_message)
sqs_models.SQSBackend.change_message_visibility = _locked(
    sqs_models.SQSBackend.change_message_visibility
)
sqs_models.SQSBackend.purge_queue = _locked(sqs_models.SQSBackend.purge_queue)
get_queue_attributes = _locked(get_queue_attributes)
sqs_models.SQSBackend.get_queue_attributes = get_queue_attributes
_receive_message = sqs_models.SQSBackend.receive_message


def receive_message(
    self, queue_name, count, wait_seconds_timeout, visibility_timeout, message_attribute_names=None
):
    # One non-waiting scan at a time under the lock (it marks messages received and moves
    # those past maxReceiveCount to the DLQ); between scans the long poll waits unlocked.
    deadline = sqs_models.unix_time() + (wait_seconds_timeout or 0)
    while True:
        with _SQS:
            result = _receive_message(
                self, queue_name, count, 0, visibility_timeout, message_attribute_names
            )
        if result or not wait_seconds_timeout or sqs_models.unix_time() >= deadline:
            return result
        self.get_queue(queue_name).wait_for_messages(
            max(0.05, min(1, deadline - sqs_models.unix_time()))
        )


sqs_models.SQSBackend.receive_message = receive_message

# Requests served at once. A long poll (ReceiveMessage with a wait) holds a thread for its whole
# wait; the test bed runs at most a few dozen consumers against one server at a time.
_THREADS = 256
_werkzeug_run_simple = server.run_simple


def _run(host, port, app, ssl_context=None, use_reloader=False, **kwargs):
    if ssl_context is not None or use_reloader:
        return _werkzeug_run_simple(
            host, port, app, ssl_context=ssl_context, use_reloader=use_reloader, **kwargs
        )
    waitress.serve(
        app,
        host=host,
        port=port,
        threads=_THREADS,
        # Idle keep-alive connections of every client the tests create stay open until the
        # client drops them (the SDK's pool: 90 s) or this timeout.
        connection_limit=4096,
        channel_timeout=120,
        # poll(2), not select(2): select cannot watch descriptors above 1023.
        asyncore_use_poll=True,
        ident="moto",
    )


server.run_simple = _run

if __name__ == "__main__":
    server.main()
