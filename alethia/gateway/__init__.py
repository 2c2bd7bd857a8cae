"""The gateway: Envoy configuration, its process, the event stream and the OpenAPI document."""
