"""moto_server with DynamoDB requests serialized.

moto 5.2.5's DynamoDB backend is not thread-safe: TransactWriteItems deep-copies the tables
for its rollback while other request threads write to them, fails with "dictionary changed size
during iteration" (HTTP 500), and can leave a transaction half applied. Real DynamoDB applies a
transaction atomically; handling one DynamoDB request at a time gives the emulator that
property back. Every other service keeps moto's threaded server (SQS long polls must not block
the rest). Same flags as moto_server. setup-moto.sh installs this as .venv/bin/ballast-moto-server.
"""
import os
import threading

import moto.server as server

_DYNAMODB = threading.Lock()


class SerializedDynamoDB(server.DomainDispatcherApplication):
    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with _DYNAMODB:
                # Drain the response inside the lock: the backend works while it is produced.
                return list(super().__call__(environ, start_response))
        return super().__call__(environ, start_response)


server.DomainDispatcherApplication = SerializedDynamoDB
# moto's own handler raises SystemExit, which request threads (a long poll) can outlive;
# the test bed and the demo stop moto with SIGTERM and need it gone at once.
server.signal_handler = lambda signum, frame: os._exit(0)

if __name__ == "__main__":
    server.main()
