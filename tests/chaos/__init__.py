"""The chaos ledger: billsync in production mode under faults, compared with an oracle.

    python -m tests.chaos [--events 100000] [--workers 3] [--kills 3]
        [--broker-cut reset:5] [--database-cut partition:5] [--seed 0]

A gunicorn gateway and 1–3 workers run against RabbitMQ and PostgreSQL through TCP
proxies; a generated history (``ledger``) is sent twice and shuffled, as signed
webhooks retried until answered 2xx; workers are SIGKILLed and scaled, the broker
and the database cut (``supervisor``); once the queue drains, the database is
compared with what the history implies (``compare``). A small run is part of the
test suite (tests/integration/test_chaos.py).
"""
