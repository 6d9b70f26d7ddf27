"""The ingest baseline: a bare Flask route that answers 202, served like the gateway.

    python -m tests.benchmarks.bare_app --port 8081   # with the BILLSYNC_* of a gateway

runs ``billsync gateway`` itself with this app in place of the gateway's, so the
baseline gets exactly the gateway's gunicorn settings (workers, threads, worker
class, limits, hooks), whatever they are now.
"""

import sys

from flask import Flask, Response, jsonify

app = Flask(__name__)


@app.post("/webhooks/<integration_id>")
def receive(integration_id: str) -> tuple[Response, int]:
    return jsonify({"event_id": integration_id, "status": "queued"}), 202


@app.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


def main() -> None:
    import webhook_gateway
    from worker.cli import main as billsync

    webhook_gateway.create_app = lambda *_args, **_kwargs: app
    sys.argv = ["billsync", "gateway", *sys.argv[1:]]
    billsync()


if __name__ == "__main__":
    main()
