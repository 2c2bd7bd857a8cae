"""The embedded stack: real NATS, SeaweedFS S3 and the four services as child processes."""
