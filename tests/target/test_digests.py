"""The ledger's digests never change: a ledger written by an earlier version must still know
every key, or each of its records would be sent again (docs/ledger.md)."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from target_convio.digests import cons_id_claim, digest, fingerprint_of, identity_of
from target_convio.json_text import encoder


def reference(value: Any) -> str:
    """The digest as the first ledger wrote it: json.dumps, then SHA-256."""
    text = json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


PIECES = ["a", "é", "\ud800", "<&>", '"', "\\", "\n", "\x00", "𝄞", " "]
NUMBERS = [0.5, -2.25, 1e300, 3.0, float("inf"), Decimal("1.00"), Decimal("NaN")]


def random_value(rng: random.Random, depth: int = 0) -> Any:
    makers: list[Callable[[], Any]] = [
        lambda: rng.randrange(-(10 ** rng.randrange(1, 120)), 10 ** rng.randrange(1, 120)),
        lambda: rng.choice(NUMBERS),
        lambda: "".join(rng.choice(PIECES) for _ in range(rng.randrange(6))),
        lambda: rng.choice([True, False, None]),
        lambda: str(rng.randrange(100)),
        lambda: rng.randrange(10**12),
    ]
    if depth < 3:
        makers.append(lambda: [random_value(rng, depth + 1) for _ in range(rng.randrange(3))])
        makers.append(
            lambda: {f"k{i}": random_value(rng, depth + 1) for i in range(rng.randrange(3))}
        )
    return rng.choice(makers)()


def test_a_digest_is_sha256_of_the_compact_json_for_any_value() -> None:
    rng = random.Random(20261130)
    for _ in range(3000):
        value = [random_value(rng), random_value(rng)]
        assert digest(value) == reference(value), value


def test_json_text_writes_what_json_dumps_writes_for_any_value() -> None:
    """The ledger keeps a key's values as this text; digests hash the compact one."""
    rng = random.Random(20261201)
    spaced = encoder(ensure_ascii=True, separators=(", ", ": "))
    compact = encoder(ensure_ascii=False, separators=(",", ":"))
    for _ in range(3000):
        value = random_value(rng)
        assert spaced(value) == json.dumps(value, default=str), value
        expected = json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
        assert compact(value) == expected, value


def test_a_fingerprint_is_the_digest_of_the_write_for_any_parameters() -> None:
    """`fingerprint_of` writes the usual write's JSON text itself; it must be the encoder's."""
    rng = random.Random(20261202)
    for _ in range(3000):
        params = {
            "".join(rng.choice(PIECES) for _ in range(rng.randrange(1, 4))): (
                "".join(rng.choice(PIECES) for _ in range(rng.randrange(8)))
                if rng.random() < 0.9
                else random_value(rng)  # not text: written by the encoder
            )
            for _ in range(rng.randrange(6))
        }
        wanted = {"group:1001": rng.random() < 0.5} if rng.random() < 0.2 else {}
        pairs = sorted(params.items())
        expected = reference(
            ["update", pairs, sorted(wanted.items())] if wanted else ["update", pairs]
        )
        assert fingerprint_of("update", params, wanted) == expected, params


def test_identities_and_fingerprints_of_earlier_versions_still_match() -> None:
    # Written by the ledger before its digests were made faster: the same keys, the same hex.
    assert identity_of({"id": 1}, {}) == (
        "fe7cbd1aa8b0a7280cbe9ef41202749c9698fa2d6abd56ce8a28e38ffc8099ba"
    )
    assert identity_of({"id": 10**101}, {}) == (
        "1dd25f3bde99c2dcaecc8c8ff693c3f6401d4cba800cb77d5eaf248d14802799"
    )
    assert identity_of({"id": "é\ud800"}, {}) == (
        "20fee95b772ba3e7c7aa406ee6bf75d0624266f7f73606c85a9ed07313b22dff"
    )
    params = {"primary_email": "a@b.org", "name.first": "Zoë"}
    assert fingerprint_of("createOrUpdate", params, {"group:1001": True}) == (
        "b29b47bbc4de1c3b439f33c2c429a2b988182b1c641324d59470a709b475f334"
    )


def test_numbers_equal_as_numbers_are_one_key_at_any_size() -> None:
    for number in (1, 10**100, 10**101, -(10**150)):
        same = [number, Decimal(number), Decimal(number).scaleb(-2).scaleb(2)]
        assert len({identity_of({"id": value}, {}) for value in same}) == 1, number
        assert identity_of({"id": number}, {}) != identity_of({"id": str(number)}, {})
    assert identity_of({"id": 1}, {}) == identity_of({"id": 1.0}, {})
    assert identity_of({"id": 1}, {}) == identity_of({"id": Decimal("1.00")}, {})
    assert identity_of({"id": True}, {}) != identity_of({"id": 1}, {})


def test_a_cons_id_claims_the_digest_of_its_json_text_whatever_its_characters() -> None:
    for cons_id in ("1", "0012", " 1001234 ", "1234567890123", "12a", "", "١٢٣", "²", 'a"b\\'):
        expected = digest(["cons_id", cons_id.strip()])
        assert cons_id_claim(cons_id) == expected, cons_id
