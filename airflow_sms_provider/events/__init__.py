"""Provider webhooks as Airflow asset events (docs/events.md).

:mod:`.payload` holds the neutral event shapes, :mod:`.mobizon` Mobizon's signature, payload
rules and connection secret, :mod:`.bsg` BSG's callbacks (path token, payload, grouping),
:mod:`.store` the durable record, :mod:`.receiver` the ASGI app, :mod:`.plugin` its Airflow
API-server mount.
"""
