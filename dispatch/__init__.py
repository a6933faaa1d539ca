"""The outbox's sender: every notice the policy records reaches its people.

The ledger writes each notice, and each state change the shop's backend hears of, with one delivery per
destination in the transaction that records the event (`ledger.schema.DeliveryRow`). The dispatcher, run by
the worker process, claims due deliveries, sends them (email through SMTP, signed webhooks over HTTP), and
records every attempt; a failed attempt is retried with exponential backoff until `delivery_retry_for` has
passed, and the delivery is then marked failed.
"""
