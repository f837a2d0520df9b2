"""sealgate: the signing and verification gateway of a certificate-free city.

The product's packages live under this namespace (``sealgate.gateway``, ``sealgate.hsm``,
``sealgate.crypto``, ``sealgate.verify``, ``sealgate.cache``, ``sealgate.bench``,
``sealgate.tsa``); in the repository they are the top-level folders of the same names,
linked here.
"""

from sealgate.errors import Error

__all__ = ["Error"]
