"""The gateway's request handlers, a module for each task; routed in :mod:`sealgate.gateway.app`."""
