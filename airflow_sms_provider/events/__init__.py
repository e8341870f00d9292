"""Provider webhooks as Airflow asset events (docs/events.md).

:mod:`.signature` and :mod:`.payload` hold the wire facts (no I/O), :mod:`.store` the durable
record, :mod:`.receiver` the ASGI app, :mod:`.plugin` its Airflow API-server mount.
"""
