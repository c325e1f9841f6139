"""The `target-convio` console script: signals are caught before the slow imports begin."""

from __future__ import annotations

import gc

from target_convio.signals import catch_early


def main() -> None:
    catch_early()
    # Imported only now: a signal during the SDK's import is kept, not a traceback.
    from target_convio.target import TargetConvio  # noqa: PLC0415

    # What the imports made lives as long as the process: the collector need not walk it at
    # every full collection (with a ledger, that halved the collector's time a record).
    gc.freeze()
    TargetConvio.cli()
