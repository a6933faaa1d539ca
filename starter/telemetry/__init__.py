"""What an operator sees of the desk's processes: JSON logs (`logs`), traces (`traces`) and the worker's
Temporal runtime metrics (`runtime`). The API's own `/metrics` is `starter.api.metrics`."""
