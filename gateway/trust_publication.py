"""Publishing the trust document: the directory's roots and seal keys, and the gateway's
own keys (the home's ``gateway-keys.json``), signed by the root.

Whatever changes a seal key or a gateway key (``init``, ``seal create``, ``seal rotate``,
revocation, ``gateway-keys``) publishes a new version, with the root's credentials the
change needed anyway; serving gateways, which never hold the root key, serve the newest
one the directory has (``GET /v1/trust``, sealgate.gateway.catalog).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sealgate.crypto.key_trust import KeyTrust
from sealgate.crypto.trust_document import SealKeyEntry, prepare_trust_document
from sealgate.gateway.home import HomeError
from sealgate.hsm.keystore import Keystore
from sealgate.verify.directory import Directory

#: Signs a SHA-256 digest with the city root's key, wherever that key lives.
RootSigner = Callable[[bytes], bytes]


def root_signer(keystore: Keystore, directory: Directory) -> RootSigner:
    """The newest root's key in ``keystore``, as a :data:`RootSigner`."""
    roots = directory.roots()
    if not roots:
        raise HomeError("the home has no city root CA (run 'sealgate init')")
    label = roots[-1][1]
    return lambda digest: keystore.sign_digest(label, digest)


def publish_trust_document(
    directory: Directory, sign: RootSigner, keys: KeyTrust, *, now: dt.datetime | None = None
) -> int:
    """Sign the directory's roots and seal keys, and the gateway's ``keys``, as the next
    version; returns it."""
    roots = directory.roots()
    if not roots:
        raise HomeError("the home has no city root CA (run 'sealgate init')")
    entries = [
        SealKeyEntry(
            seal_id=seal.seal_id,
            kind=seal.kind.value,
            kind_name=seal.kind.chinese_name,
            unit_name=seal.unit_name,
            unit_code=seal.unit_code,
            version=key.version,
            state=key.state.value,
            certificate=key.certificate,
            retired_at=seal.retired_at(key),
        )
        for seal in directory.seals()
        for key in seal.keys
    ]
    previous = directory.trust_document()
    version = 1 if previous is None else previous[0] + 1
    pending = prepare_trust_document(
        version=version,
        issued_at=now or dt.datetime.now(dt.UTC),
        roots=[der for der, _ in roots],
        seal_keys=entries,
        keys=keys,
        root_der=roots[-1][0],
    )
    directory.add_trust_document(version, pending.finish(sign(pending.digest)))
    return version
