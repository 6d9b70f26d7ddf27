"""The ingest baseline: a bare Flask route that answers 202, served like the gateway."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.post("/webhooks/<integration_id>")
def receive(integration_id: str):  # type: ignore[no-untyped-def]
    return jsonify({"event_id": integration_id, "status": "queued"}), 202
