"""Protobuf enums as the REST API writes them: ``CHARGE_MODEL_PER_UNIT`` <-> ``"per_unit"``."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper


@dataclass(frozen=True)
class EnumNames:
    """The lower-case names of a protobuf enum's values, without its prefix and without ``*_UNSPECIFIED``."""

    numbers: dict[str, int]
    names: dict[int, str]

    @classmethod
    def of(cls, enum: EnumTypeWrapper, prefix: str) -> EnumNames:
        numbers = {
            name.removeprefix(prefix).lower(): number
            for name, number in enum.items()
            if number != 0  # *_UNSPECIFIED is "not set", never a value a client sends or sees
        }
        return cls(numbers, {number: name for name, number in numbers.items()})

    def number(self, name: str) -> int:
        """The protobuf number of a REST name (the schema's Literal has already checked it)."""
        return self.numbers[name]

    def name(self, number: int) -> str | None:
        """The REST name of a protobuf number; None for unspecified (or a value newer than this gateway)."""
        return self.names.get(number)
