"""Provisioning SoftHSM2 tokens for a development home or a test run."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from sealgate.hsm.errors import KeystoreConfigError

logger = logging.getLogger(__name__)

_TOKENDIR = "directories.tokendir"

#: Where Debian/Ubuntu and ``make install`` put the SoftHSM2 module.
SOFTHSM2_MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)


def _find_module() -> str:
    override = os.environ.get("SEALGATE_PKCS11_MODULE")
    if override:
        return override
    for candidate in SOFTHSM2_MODULE_CANDIDATES:
        if os.path.exists(candidate):
            return candidate
    return SOFTHSM2_MODULE_CANDIDATES[0]


#: The PKCS#11 module path: ``$SEALGATE_PKCS11_MODULE``, else the first SoftHSM2 library
#: found in the usual places (else the Debian path, which may not exist: check).
SOFTHSM2_MODULE = _find_module()


def softhsm_available() -> bool:
    """Whether the SoftHSM2 module and ``softhsm2-util`` are installed."""
    return os.path.exists(SOFTHSM2_MODULE) and shutil.which("softhsm2-util") is not None


def create_softhsm_token(directory: Path, label: str, pin: str, so_pin: str) -> Path:
    """Create a SoftHSM2 configuration and one initialised token under ``directory``.

    Returns the path of ``softhsm2.conf``; pass it as ``KeystoreConfig.softhsm2_conf``.
    The PINs go to ``softhsm2-util`` as arguments (its only interface) and nowhere else:
    not into logs, not into exception messages.
    """
    util = shutil.which("softhsm2-util")
    if util is None:
        raise KeystoreConfigError("softhsm2-util is not installed")
    directory = Path(directory).resolve()
    token_dir = directory / "tokens"
    token_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"{_TOKENDIR} = {token_dir}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n"
    )
    result = subprocess.run(
        [util, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", so_pin],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        for secret in (pin, so_pin):
            if secret:
                detail = detail.replace(secret, "***")
        raise KeystoreConfigError(
            f"softhsm2-util --init-token failed ({result.returncode}): {detail}"
        )
    return conf


def follow_moved_tokens(conf: Path) -> None:
    """Point ``conf`` at the ``tokens`` directory beside it, should it name another.

    SoftHSM2 wants an absolute ``directories.tokendir``: a home copied or restored to
    another path would otherwise go on using the original's token, or find none once
    the original is gone. Only a configuration whose own ``tokens`` directory exists is
    rewritten (atomically); one deliberately pointed elsewhere is left alone.
    """
    here = conf.parent.resolve() / "tokens"
    if not here.is_dir():
        return
    lines = conf.read_text().splitlines()
    for i, line in enumerate(lines):
        name, _, value = line.partition("=")
        if name.strip() != _TOKENDIR:
            continue
        if Path(value.strip()) == here:
            return
        lines[i] = f"{_TOKENDIR} = {here}"
        staged = conf.with_name(f"{conf.name}.{os.getpid()}.new")
        staged.write_text("\n".join(lines) + "\n")
        os.replace(staged, conf)
        logger.warning("the home has moved: its SoftHSM2 token is now read from %s", here)
        return
