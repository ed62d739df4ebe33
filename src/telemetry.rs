//! JSON logs through `tracing`, one request id per request.
