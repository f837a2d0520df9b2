"""sealgate.client: the library for systems that seal, check and manage electronic proofs.

::

    from sealgate.client import Client

    with Client("http://127.0.0.1:8080", token=VERIFIER_TOKEN) as gateway:
        answer = gateway.verify("430900-ZDXE31-DD2417-Z7GDVP", purpose="demo")
        print(answer.status, answer.holder.name)

:class:`Client` blocks, :class:`AsyncClient` awaits; both have the same operations, named
after the gateway's routes (docs/design.md §6.2). Codes and identity numbers are checked
before a request leaves; sealings carry an Idempotency-Key; 429 and 503 are retried as
``Retry-After`` says, within a bound; refusals raise the tree of :mod:`.errors`.
:func:`verify_offline` checks a sealed proof with no gateway at all.

Installs without the gateway's dependencies: ``pip install sealgate-client`` (httpx,
cryptography, asn1crypto, rfc8785), built from ``packaging/sealgate-client``.
"""

from sealgate.client.admin import ApiClient, LookupLimit, SealInfo, SealKeyInfo
from sealgate.client.asynchronous import AsyncClient
from sealgate.client.calls import NO_RETRIES, RetryPolicy
from sealgate.client.casework import (
    Action,
    Consent,
    HolderRequest,
    Mode,
    NewRequest,
    RequestAnswer,
    RequestStep,
    State,
    Tier,
    VerificationRequest,
)
from sealgate.client.codes import normalise_code, normalise_holder_id
from sealgate.client.errors import (
    ClientError,
    Conflict,
    Forbidden,
    GatewayUnreachable,
    InvalidCode,
    InvalidHolderId,
    InvalidRequest,
    Problem,
    ProofRejected,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    UnexpectedAnswer,
    UnknownCode,
    Unprocessable,
)
from sealgate.client.models import (
    DataOwner,
    DocumentCheck,
    Endorsement,
    GatewayKey,
    History,
    Holder,
    HolderKind,
    Issuer,
    MaskedHolder,
    ProofRequest,
    Readiness,
    SealedProof,
    Status,
    StatusChange,
    TrustDocument,
    TrustedSeal,
    Unit,
    Verification,
)
from sealgate.client.offline import OfflineProof, trust_list, verify_offline
from sealgate.client.showing import PublicCheck, QrCheck, QrCode, ShownHolder, StatusList
from sealgate.client.sync import Client

__all__ = [
    "NO_RETRIES",
    "Action",
    "ApiClient",
    "AsyncClient",
    "Client",
    "ClientError",
    "Conflict",
    "Consent",
    "DataOwner",
    "DocumentCheck",
    "Endorsement",
    "Forbidden",
    "GatewayKey",
    "GatewayUnreachable",
    "History",
    "Holder",
    "HolderKind",
    "HolderRequest",
    "InvalidCode",
    "InvalidHolderId",
    "InvalidRequest",
    "Issuer",
    "LookupLimit",
    "MaskedHolder",
    "Mode",
    "NewRequest",
    "OfflineProof",
    "Problem",
    "ProofRejected",
    "ProofRequest",
    "PublicCheck",
    "QrCheck",
    "QrCode",
    "Readiness",
    "RequestAnswer",
    "RequestStep",
    "RetryPolicy",
    "SealInfo",
    "SealKeyInfo",
    "SealedProof",
    "ShownHolder",
    "State",
    "Status",
    "StatusChange",
    "StatusList",
    "Tier",
    "TooManyRequests",
    "TrustDocument",
    "TrustedSeal",
    "Unauthorized",
    "Unavailable",
    "UnexpectedAnswer",
    "Unit",
    "UnknownCode",
    "Unprocessable",
    "Verification",
    "VerificationRequest",
    "normalise_code",
    "normalise_holder_id",
    "trust_list",
    "verify_offline",
]
