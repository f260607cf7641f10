"""Reading plan terms, catalogs and charges from JSON or YAML files, with every number kept exact.

A JSON number such as ``0.10`` is read as ``Decimal`` and sent as the string ``"0.10"``; a YAML float is kept as
its text. The gateway reads both forms exactly, so what the file says is what the catalog stores.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from billing_cli.connection import CliError


def load_document(path: Path) -> Any:
    """The parsed file: JSON, or YAML for ``.yaml``/``.yml`` (needs PyYAML). Numbers with a fraction or exponent
    become decimal strings."""
    try:
        text = path.read_text()
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        return _exact(_load_yaml(text, path))
    try:
        return _exact(json.loads(text, parse_float=Decimal))
    except ValueError as error:
        raise CliError(f"{path} is not valid JSON: {error}") from None


def _load_yaml(text: str, path: Path) -> Any:
    try:
        import yaml  # optional: only YAML files need it
    except ImportError:
        raise CliError(f"{path}: reading YAML needs PyYAML (pip install pyyaml); or give the file as JSON") from None

    class ExactLoader(yaml.SafeLoader):
        """SafeLoader, except that floats stay the text they were written as (never a binary float)."""

    ExactLoader.add_constructor("tag:yaml.org,2002:float", lambda loader, node: loader.construct_scalar(node))
    try:
        return yaml.load(text, Loader=ExactLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as error:
        raise CliError(f"{path} is not valid YAML: {error}") from None


def _exact(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {key: _exact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_exact(item) for item in value]
    return value


def canonical(value: Any) -> str:
    """The same JSON text for the same content, whatever the key order (for idempotency keys)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
