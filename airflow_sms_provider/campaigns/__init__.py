"""Crash-safe campaign work, below the operators and above the hooks: no ``BaseOperator`` here.

* :mod:`.ledger`: the durable record of what a task made and *which* recipients went
  where, identified by content (an order-independent digest and a count), not by position.
* :mod:`.reconcile`: the rules for looking work up again at the provider and verifying it
  before adopting it.
* :mod:`.lease`: a lease in the durable state fencing overlapping tries of one task.
* :mod:`.watch` and :mod:`.events`: the one watch loop, and the error events it and the
  triggers yield (read back by sensors and deferrable operators).
* :mod:`.mobizon`, :mod:`.bsg`, :mod:`.ogangi` (and :mod:`.mobizon_upload`): each provider's
  campaign work, a class over a parameters dataclass and a :class:`.run.TaskRuntime`. The
  provider operators build the parameters and run it; ``run_campaign`` (the neutral
  operator's entry) builds the same parameters and runs the same work.
* :mod:`.run`: what they share (the runtime, parameters plumbing, the neutral summary).
"""
