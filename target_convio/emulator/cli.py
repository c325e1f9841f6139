"""`convio-emulator`: serve an emulated Luminate Online site until interrupted."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from target_convio.emulator.faults import REFUSALS, Faults
from target_convio.emulator.server import Emulator
from target_convio.emulator.site import Site, SiteError, default_site_data


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convio-emulator",
        description="A local, stateful Convio / Luminate Online SRConsAPI for tests and demos. "
        "Prints its SRConsAPI URL on stdout, then serves until SIGINT or SIGTERM.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one")
    parser.add_argument("--site", help="site file (JSON); default: the built-in demo site")
    parser.add_argument(
        "--print-site", action="store_true", help="print the built-in site file and exit"
    )
    parser.add_argument(
        "--state-file",
        help="JSON file of stored constituents: loaded at start if it exists, saved at stop",
    )
    parser.add_argument(
        "--fields-listing",
        help="a recorded listUserFields answer (XML) whose fields replace the site's",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    faults = parser.add_argument_group("fault injection (per API call)")
    faults.add_argument("--latency-ms", type=float, default=0.0, help="fixed latency")
    faults.add_argument("--latency-jitter-ms", type=float, default=0.0, help="random extra latency")
    faults.add_argument(
        "--error-rate", type=float, default=0.0, help="probability of an errorResponse"
    )
    faults.add_argument(
        "--error-code", type=int, default=1, help="its Convio code (default 1: unable to process)"
    )
    faults.add_argument("--http-500-rate", type=float, default=0.0, help="probability of HTTP 500")
    faults.add_argument("--http-503-rate", type=float, default=0.0, help="probability of HTTP 503")
    faults.add_argument("--reset-rate", type=float, default=0.0, help="probability of a TCP reset")
    faults.add_argument("--slow-rate", type=float, default=0.0, help="probability of a slow answer")
    faults.add_argument("--slow-ms", type=float, default=0.0, help="extra delay of a slow answer")
    faults.add_argument(
        "--lost-rate",
        type=float,
        default=0.0,
        help="probability that a call is carried out and then its connection is reset",
    )
    faults.add_argument("--max-rps", type=float, help="above this many calls/s answer HTTP 429")
    faults.add_argument("--seed", type=int, help="random seed, for repeatable faults")
    faults.add_argument(
        "--fault-methods", help="comma-separated API methods that faults apply to (default: all)"
    )
    faults.add_argument(
        "--fail-value",
        action="append",
        default=[],
        help="a call carrying this value in any parameter answers --error-code (repeatable)",
    )
    faults.add_argument(
        "--capacity",
        type=int,
        help="calls the site serves at once; more queue, and past twice this many are refused",
    )
    faults.add_argument(
        "--capacity-refusal",
        choices=REFUSALS,
        default="http_503",
        help="how a call over capacity is refused (default http_503)",
    )
    return parser


def faults_from_args(args: argparse.Namespace) -> Faults:
    methods = args.fault_methods
    return Faults(
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.latency_jitter_ms,
        error_rate=args.error_rate,
        error_code=args.error_code,
        http_500_rate=args.http_500_rate,
        http_503_rate=args.http_503_rate,
        reset_rate=args.reset_rate,
        slow_rate=args.slow_rate,
        slow_ms=args.slow_ms,
        lost_rate=args.lost_rate,
        max_rps=args.max_rps,
        seed=args.seed,
        methods=frozenset(m.strip() for m in methods.split(",")) if methods else None,
        fail_values=frozenset(args.fail_value),
        capacity=args.capacity,
        capacity_refusal=args.capacity_refusal,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.print_site:
        print(json.dumps(default_site_data(), indent=1, ensure_ascii=False))
        return 0
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    try:
        site = Site.load(args.site) if args.site else Site.default()
        if args.fields_listing:
            site = site.with_listing(args.fields_listing)
        faults = faults_from_args(args)
        emulator = Emulator(site, faults, host=args.host, port=args.port)
        state_file = Path(args.state_file) if args.state_file else None
        if state_file and state_file.exists():
            emulator.store.restore(json.loads(state_file.read_text(encoding="utf-8")))
    except (SiteError, ValueError, OSError, TypeError) as exc:
        parser.error(str(exc))

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # SIGINT too: Python's own handler is missing when the parent ignored SIGINT.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    emulator.server.verbose = args.verbose
    try:  # the URL is printed inside: a stop signal right after it is handled
        print(emulator.api_url, flush=True)
        emulator.server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        emulator.server.server_close()
        if state_file:
            save(emulator, state_file)
    return 0


def save(emulator: Emulator, path: Path) -> None:
    """Write the stored constituents, replacing the file only once the new one is whole."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(emulator.constituents(), ensure_ascii=False), encoding="utf-8")
    partial.replace(path)


if __name__ == "__main__":
    sys.exit(main())
