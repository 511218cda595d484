"""BSON codecs: FHIR decimals kept exact as Decimal128 (see `fhir.json`)."""

from __future__ import annotations

from decimal import Decimal

from bson.codec_options import TypeDecoder, TypeEncoder, TypeRegistry
from bson.decimal128 import Decimal128


class _DecimalCodec(TypeEncoder, TypeDecoder):
    python_type = Decimal
    bson_type = Decimal128

    def transform_python(self, value: Decimal) -> Decimal128:
        return Decimal128(value)

    def transform_bson(self, value: Decimal128) -> Decimal:
        return value.to_decimal()


TYPE_REGISTRY = TypeRegistry([_DecimalCodec()])
"""For the MongoDB client: `Decimal` <-> Decimal128."""
