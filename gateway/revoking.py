"""The root's duties beyond certifying seals: revoking seal certificates, issuing CRLs,
and destroying the keys ``seal rotate`` retired (docs/design.md §7.2).

CLI-side, like :mod:`sealgate.gateway.provision`: revocation and CRLs need the city root's
PIN (a :class:`~sealgate.gateway.provision.Provisioner` given it); destroying retired keys
needs only the gateway's token. Every CRL is kept in the directory (every gateway serves
the newest at ``GET /v1/crl``) and written to the home as ``crl.der``.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sealgate.crypto.certificates import certificate_serial
from sealgate.crypto.crl import RevokedEntry, prepare_crl
from sealgate.gateway.home import HomeError
from sealgate.hsm.keystore import Keystore
from sealgate.verify.directory import (
    Directory,
    IssuedCrl,
    KeyState,
    RevocationReason,
    Seal,
    SealKey,
)

if TYPE_CHECKING:
    from sealgate.gateway.provision import Provisioner


def revoked_entries(seals: Iterable[Seal]) -> list[RevokedEntry]:
    """Every revoked seal certificate the directory records, as CRL entries."""
    return [
        RevokedEntry(
            serial=certificate_serial(key.certificate),
            revoked_at=_utc(key.revoked_at),
            reason=(key.revocation_reason or RevocationReason.UNSPECIFIED).value,
            invalid_since=None if key.invalid_since is None else _utc(key.invalid_since),
        )
        for seal in seals
        for key in seal.keys
        if key.state is KeyState.REVOKED and key.revoked_at is not None
    ]


def issue_crl(provisioner: Provisioner, directory: Directory) -> IssuedCrl:
    """A new CRL of every revoked seal certificate, signed in the root's token, current
    for the city's ``crl_next_update``; kept in the directory and the home."""
    settings = provisioner.settings
    roots = directory.roots()
    if not roots:
        raise HomeError("the home has no city root CA (run 'sealgate init')")
    root_der, root_label = roots[-1]
    latest = directory.latest_crl()
    number = 1 if latest is None else latest.number + 1
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    next_update = now + dt.timedelta(seconds=settings.crl_next_update)
    pending = prepare_crl(
        root_der,
        revoked_entries(directory.seals()),
        number=number,
        this_update=now,
        next_update=next_update,
    )
    with provisioner.root_keystore() as root:
        der = pending.finish(root.sign_digest(root_label, pending.digest))
    crl = IssuedCrl(number, der, now.timestamp(), next_update.timestamp())
    directory.add_crl(crl)
    staged = settings.crl_path.with_name(f".{settings.crl_path.name}.{os.getpid()}")
    staged.write_bytes(der)
    os.replace(staged, settings.crl_path)  # a reader sees the old CRL or the new, whole
    return crl


def revoke_seal(
    provisioner: Provisioner,
    directory: Directory,
    seal_id: str,
    *,
    reason: RevocationReason,
    since: float | None = None,
    version: int | None = None,
) -> tuple[list[SealKey], IssuedCrl]:
    """Revoke a seal's certificates (one version, or all), then issue the CRL that says
    so. ``since``: when the key is known or feared compromised (the CRL's
    invalidityDate; not after now). The root's PIN is checked before anything changes."""
    # Whole seconds, as the CRL says them: the directory and the CRL judge alike.
    now = float(int(time.time()))
    if since is not None and since > time.time():
        raise HomeError("--since is in the future: a compromise is known once it happened")
    since = None if since is None else float(int(since))
    with provisioner.root_keystore():  # the root PIN opens its token, or nothing is revoked
        revoked = directory.revoke_seal_keys(
            seal_id, version=version, at=now, reason=reason, invalid_since=since
        )
        if not revoked:
            raise HomeError(f"seal {seal_id} has no certificate left to revoke")
        return revoked, issue_crl(provisioner, directory)


def purge_retired_keys(
    keystore: Keystore, directory: Directory, *, now: float | None = None
) -> list[SealKey]:
    """Destroy, in the token, every retired or revoked seal key whose grace has passed
    (a revoked key at once); returns the keys destroyed. Proofs they sealed still verify:
    each carries its certificate."""
    now = time.time() if now is None else now
    destroyed = []
    for seal in directory.seals():
        for key in seal.keys:
            if key.state is KeyState.ACTIVE or key.destroyed_at is not None:
                continue
            due = key.destroy_after if key.state is KeyState.RETIRED else key.revoked_at
            if due is None or due > now:
                continue
            keystore.destroy_key(key.key_label)  # nothing if gone already
            directory.key_destroyed(key.key_label, now)
            destroyed.append(key)
    return destroyed


def _utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC)
