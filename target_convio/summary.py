"""The run's summary: outcomes and Convio codes counted over every settled row."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from target_convio.outcomes import FieldError, Outcome
from target_convio.rows import ResultRow

REFUSED = (Outcome.INVALID, Outcome.REJECTED, Outcome.FAILED)
REASON_LENGTH = 120


class Summary:
    """Outcomes and Convio codes counted over the run."""

    def __init__(self) -> None:
        self.outcomes: Counter[Outcome] = Counter(dict.fromkeys(Outcome, 0))
        self.by_code: Counter[str] = Counter()
        self.predicted: Counter[str] = Counter()  # a compare dry run's predictions
        self.adopted = 0  # unchanged rows of constituents found by a read (first_contact)
        self.by_field: Counter[str] = Counter()  # refusals (invalid, rejected, failed) by field
        self.reasons: Counter[str] = Counter()  # and by reason: Convio's message, or the check

    def add(self, rows: Iterable[ResultRow]) -> None:
        for row in rows:
            self.outcomes[row.outcome] += 1
            self.adopted += row.adopted
            if row.code is not None:
                self.by_code[row.code] += 1
            if row.compared:
                self.predicted[row.predicted or "unknown"] += 1
            if row.outcome in REFUSED and row.errors:
                first = row.errors[0]
                self.by_field[first.field] += 1
                self.reasons[_reason(row.outcome, first)] += 1

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())

    def as_dict(self) -> dict[str, Any]:
        """The `summary` of a STATE line."""
        summary = {
            **{o.value: self.outcomes[o] for o in Outcome},
            "by_code": dict(sorted(self.by_code.items())),
        }
        if self.predicted:
            summary["predicted"] = dict(sorted(self.predicted.items()))
        if self.adopted:
            summary["adopted"] = self.adopted
        return summary

    def progress(self) -> str:
        """The outcomes seen so far, for a progress line: `12 created, 3 invalid`."""
        return ", ".join(f"{n} {o.value}" for o, n in self.outcomes.items() if n)

    def table(self) -> str:
        """A small text table: outcomes, then Convio codes."""
        lines = [f"{'outcome':<10} {'records':>9}"]
        lines += [f"{o.value:<10} {self.outcomes[o]:>9,}" for o in Outcome]
        lines.append(f"{'total':<10} {self.total:>9,}")
        lines += [f"code {code:<5} {count:>9,}" for code, count in sorted(self.by_code.items())]
        lines += [f"would be {p:<10} {n:>9,}" for p, n in sorted(self.predicted.items())]
        if self.adopted:
            found = "(of the unchanged: found, not written)"
            lines.append(f"{'adopted':<10} {self.adopted:>9,} {found}")
        return "\n".join(lines)


def _reason(outcome: Outcome, first: FieldError) -> str:
    """What refusals have in common: a check's field and code (its message names the value),
    or Convio's own message (the same for a record refused again without a call)."""
    if outcome is Outcome.INVALID:
        return f"{first.field}: {first.code}"
    text = " ".join(first.message.split())
    return text if len(text) <= REASON_LENGTH else text[: REASON_LENGTH - 1] + "…"
