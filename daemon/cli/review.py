"""``veil review``: the review station, a local web page for the items in review/ and spotcheck/."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from daemon import log
from daemon.cli.serve import EX_CONFIG, load_for
from daemon.config.settings import SYSTEM_CONFIG, ConfigError

DEFAULT_PORT = 8765


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "review", help="serve the review station on localhost (manual regions, false positives, approval)",
        description="Serve the review station on the loopback address. The configuration is the service's "
                    f"(--config, else $VEIL_CONFIG or {SYSTEM_CONFIG}); for a trial, the --ingest/--output (and "
                    "--review/--failed) given to veil serve. The access token is printed here, "
                    "unless --token-file names a file readable by its owner only.")
    parser.add_argument("--config", type=Path, help="TOML configuration file (the one veil serve uses)")
    parser.add_argument("--ingest", type=Path, help="a trial's ingest folder (as given to veil serve --ingest)")
    parser.add_argument("--output", type=Path, help="a trial's output folder (as given to veil serve --output)")
    parser.add_argument("--review", type=Path, help="a trial's review folder, if veil serve was given one")
    parser.add_argument("--failed", type=Path, help="a trial's failed folder, if veil serve was given one")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (127.0.0.1, ::1, localhost or another 127.x.y.z)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free port)")
    parser.add_argument("--token-file", type=Path, help="read the token from this file (mode 0600 or 0400, yours)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from daemon.audit.log import AUDIT_NAME, AuditLog
    from daemon.models.engine_cache import EngineCache
    from daemon.review.auth import Authenticator, AuthError, check_loopback, new_token, read_token_file
    from daemon.review.server import ReviewApp, ReviewServer

    log.configure()
    try:
        check_loopback(args.host)
        token = read_token_file(args.token_file) if args.token_file else new_token()
    except AuthError as exc:
        print(f"veil review: {exc}", file=sys.stderr)
        return 2
    try:
        settings = load_for(args)[2]  # a trial's folders and state, like veil serve --ingest/--output
    except ConfigError as exc:
        print(f"veil review: invalid configuration: {exc}", file=sys.stderr)
        return EX_CONFIG
    log.configure(settings.service.log_level, log_file_names=settings.service.log_file_names)
    audit = AuditLog(settings.drift.resolved_store_dir(settings.service) / AUDIT_NAME)
    app = ReviewApp(settings, Authenticator(token), EngineCache(settings.service), audit)
    try:
        server = ReviewServer((args.host, args.port), app)
    except OSError as exc:
        print(f"veil review: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    host, port = server.server_address
    shown = f"[{host}]" if ":" in host else host
    print(f"veil review: http://{shown}:{port}/", flush=True)
    if not args.token_file:
        print(f"veil review: token {token}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
