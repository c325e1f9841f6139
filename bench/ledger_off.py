"""What the ledger costs, and what it costs when it is off, in one sitting (issue 21).

Round robin against one emulator at zero latency, every run sending new donors (all created):
this code with the ledger off, the code before the ledger (`--baseline`), and this code with
a SQLite ledger. Each figure is CPU per record, the fixed cost of a run (an empty input)
subtracted, the best of the rounds. Goals: off at most the code before the ledger (1.00); on
at most 1.10 of off.

`--instructions` counts user-space instructions under valgrind's callgrind instead: rounds
of 1,000 records (one unless `--rounds` says), the fewest of them, a count that does not move
with the machine's load, but by up to 1% with how the threads interleave. It leaves out the
kernel's share (the ledger's page writes), which CPU time includes.

The code before the ledger, installed beside this checkout:
    git worktree add ../pre-ledger d6b0afb
    python -m venv ../pre-ledger/.venv && ../pre-ledger/.venv/bin/pip install -e ../pre-ledger
Usage: python bench/ledger_off.py [--records N] [--rounds N] [--baseline ../pre-ledger/.venv/bin]
    [--instructions]
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from harness import BIN, Measured, emulator, per_record_ms, run_target, singer_input, target_config

BEFORE, OFF, ON = "before the ledger", "ledger off", "SQLite ledger"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, help="10,000 (1,000 with --instructions)")
    parser.add_argument("--rounds", type=int, help="3 (1 with --instructions)")
    parser.add_argument("--baseline", type=Path, help="bin folder of the code before the ledger")
    parser.add_argument("--instructions", action="store_true", help="count, under callgrind")
    args = parser.parse_args()
    counting = args.instructions
    records = args.records or (1_000 if counting else 10_000)
    rounds = args.rounds or (1 if counting else 3)
    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    names = ([BEFORE] if args.baseline else []) + [OFF, ON]
    with emulator() as url:
        base = target_config(url, max_concurrency=8, batch_size_rows=500)

        def run(name: str, path: Path, ledger: str) -> Measured:
            exe = args.baseline / "target-convio" if name == BEFORE else BIN / "target-convio"
            config = {**base, "ledger_url": f"sqlite:///{folder / ledger}"} if name == ON else base
            return run_target(config, path, exe, instructions=counting)

        empty = singer_input(0, folder)
        fixed = {
            name: _best((run(name, empty, f"fixed{i}.sqlite") for i in range(3)), counting)
            for name in names
        }
        runs: dict[str, list[Measured]] = {name: [] for name in names}
        for round_ in range(rounds):
            for name in names:  # new donors every run: each run creates them all
                path = singer_input(records, folder, tag=f"-{round_}{name[0]}")
                runs[name].append(run(name, path, f"ledger{round_}.sqlite"))
                path.unlink()
    per_record: Callable[[Measured, Measured], float] = (
        (lambda m, f: (m.instructions - f.instructions) / records / 1000)
        if counting
        else (lambda m, f: per_record_ms(m, f, records))
    )
    unit = "thousand instructions/record" if counting else "CPU ms/record (best)"
    figures = {name: per_record(_best(runs[name], counting), fixed[name]) for name in names}
    how = f"{rounds} rounds" + (" under callgrind" if counting else "")
    print(f"{records:,} new donors a run, {how}, zero latency, C=8\n")
    print(f"| code | {unit} | every round | ratio | goal |")
    print("|---|---|---|---|---|")
    for name, figure in figures.items():
        every = ", ".join(f"{per_record(m, fixed[name]):.3f}" for m in runs[name])
        ratio, goal = "", ""
        if name == OFF and BEFORE in figures:
            value = figure / figures[BEFORE]
            ratio, goal = f"{value:.2f} of before", f"1.00 {'met' if value <= 1.0 else 'MISSED'}"
        if name == ON:
            value = figure / figures[OFF]
            ratio, goal = f"{value:.2f} of off", f"1.10 {'met' if value <= 1.10 else 'MISSED'}"
        print(f"| {name} | {figure:.3f} | {every} | {ratio} | {goal} |")


def _best(measured: Iterable[Measured], counting: bool) -> Measured:
    runs = list(measured)
    failed = [m for m in runs if m.returncode]
    if failed:
        raise SystemExit(f"a target run failed (exit {failed[0].returncode})")
    return min(runs, key=lambda m: m.instructions if counting else m.cpu_s)


if __name__ == "__main__":
    main()
