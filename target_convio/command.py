"""The `target-convio` console script: signals are caught before the slow imports begin."""

from __future__ import annotations

import gc

from target_convio.signals import catch_early


def main() -> None:
    catch_early()
    # The imports make ~70,000 objects that live as long as the process, and ~2,000 of garbage:
    # walking them during the imports costs more (4% of the start's instructions) than the
    # garbage is worth. Frozen, the collector never walks them again (with a ledger, that
    # halved the collector's time a record).
    gc.disable()
    # Imported only now: a signal during the SDK's import is kept, not a traceback.
    from target_convio.target import TargetConvio  # noqa: PLC0415

    gc.freeze()
    gc.enable()
    TargetConvio.cli()
