"""Secret keys of the accounts service kept as files in ``<CFD_DATA_DIR>/keys``.

Each is 32 random bytes, generated on first use with mode 0600. Replicas on several machines
must share these files, as they share the JWT signing key.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Final

from mesh.tokens import KEYS_DIR_NAME, _fsync_dir, _write_temp

KEY_BYTES: Final = 32


class KeyFileError(RuntimeError):
    """A key file cannot be read or is malformed."""


def load_or_create_key(data_dir: Path, file_name: str) -> bytes:
    """Return the key ``<data_dir>/keys/<file_name>``, generating it on first use.

    Written to a temporary file and hard-linked into place, so processes starting together
    all end up with the same key.
    """
    keys_dir = data_dir / KEYS_DIR_NAME
    path = keys_dir / file_name
    if not path.exists():
        keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = _write_temp(keys_dir, file_name, secrets.token_bytes(KEY_BYTES), 0o600)
        try:
            os.link(tmp, path)
            _fsync_dir(keys_dir)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read the key {path}: {exc.strerror}") from None
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"{path} must hold exactly {KEY_BYTES} bytes")
    return key
