"""The sealgate service: HTTP API, CLI, configuration and process model."""
