"""A development RFC 3161 time-stamping authority: ``sealgate tsa serve``.

A city uses its national or provincial TSA (``SEALGATE_TSA_URL``); this one is for
development and tests: its key lives in a SoftHSM2 token of its own, made on first start.
"""
