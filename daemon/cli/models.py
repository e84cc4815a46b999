"""``veil models list | add | verify | activate``: the detector models, their contracts and which one is active.

Plain ``veil models`` lists. ``add`` registers an ONNX file after loading it as a worker would; ``verify``
checks every registered file against its sha256; ``activate`` gates the candidate on the control set's mask
recall, writes the active selection (the service picks it up on ``systemctl reload veil``) and audits it.
"""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from pathlib import Path

from pipeline.detect.catalogue import default_model_dir, find_file
from pipeline.detect.families import family_names
from pipeline.detect.precision import exact_int8_kernels
from pipeline.detect.runtime import RuntimeParams
from pipeline.errors import ModelError
from pipeline.params import Params

from daemon.cli.context import add_config_argument, settings_for
from daemon.config.settings import DEFAULT_PROFILE, ConfigError, Settings

TASKS = ("face", "license_plate")


def register(subparsers) -> None:
    parser = subparsers.add_parser("models", help="list, add, verify and activate detector models", description=__doc__)
    _common(parser)
    actions = parser.add_subparsers(dest="models_command", metavar="ACTION")
    parser.set_defaults(handler=_list, config=None, model_dir=None)

    listing = actions.add_parser("list", help="every registered model: task, family, licence, source, sha256, state")
    _common(listing)
    listing.set_defaults(handler=_list)

    add = actions.add_parser("add", help="register an ONNX model (its contract is checked by loading it)")
    _common(add)
    add.add_argument("name", help="a short name: letters, digits, _ . -")
    add.add_argument("--file", type=Path, required=True, help="the ONNX file (copied into the model directory)")
    add.add_argument("--family", choices=family_names(), required=True)
    add.add_argument("--classes", required=True, help="comma-separated: face, license_plate")
    add.add_argument("--input-size", type=int, default=None, help="YOLO families: the square input side, e.g. 640")
    add.add_argument("--license", required=True, help="the model's licence, as its publisher states it")
    add.set_defaults(handler=_add)

    verify = actions.add_parser("verify", help="check the checksums of all registered models (or one); exit 1 on any fault")
    _common(verify)
    verify.add_argument("name", nargs="?")
    verify.set_defaults(handler=_verify)

    activate = actions.add_parser("activate", help="make a model serve its task, if it keeps mask recall (audited)")
    _common(activate)
    activate.add_argument("name")
    activate.add_argument("--task", choices=TASKS, help="needed only when the model declares both classes")
    activate.add_argument("--control-set", type=Path, help="folder with annotations.json and images/ "
                                                           "(default: [models] control_set)")
    activate.add_argument("--force", action="store_true", help="activate even with lower recall (audited as forced)")
    activate.add_argument("--reason", help="why (required with --force; recorded in the audit log)")
    activate.add_argument("--device", default="cpu", help="where the evaluation runs: cpu, cuda or cuda:N")
    activate.add_argument("--threads", type=int, default=0)
    activate.set_defaults(handler=_activate)


def _common(parser: argparse.ArgumentParser) -> None:
    """On ``models`` and on each action, so they go before or after it; unset, they keep ``models``' None."""
    add_config_argument(parser, default=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, default=argparse.SUPPRESS,
                        help="model directory (default: service.model_dir, else the installed models)")


def _context(args: argparse.Namespace):
    """(settings or None, registry), or raise ConfigError."""
    from daemon.models.registry import Registry

    settings = settings_for(args.config)
    model_dir = args.model_dir or (settings.service.model_dir if settings else None) or default_model_dir()
    return settings, Registry(model_dir)


def _guarded(action):
    def wrapper(args: argparse.Namespace) -> int:
        from daemon import log
        from daemon.models.activation import ActivationRefused
        from daemon.models.registry import RegistryError

        log.configure("warning")  # events go to stderr as JSON; stdout is the command's answer
        try:
            return action(args)
        except (ConfigError, RegistryError, ModelError, ActivationRefused, ValueError, OSError) as exc:
            print(f"veil models: {exc}", file=sys.stderr)
            return 1
    return wrapper


@_guarded
def _list(args: argparse.Namespace) -> int:
    _, registry = _context(args)
    selection = registry.selection()
    print(f"model directory: {registry.model_dir}")
    broken = 0
    for model in registry.models():
        state = registry.state(model)
        broken += state != "ok"
        serving = [t for t in TASKS if registry.active(t).name == model.name]
        active = f"  ACTIVE for {', '.join(serving)}" if serving else ""
        print(f"\n{model.name}  [{state.upper() if state != 'ok' else 'ok'}]{active}")
        size = f", input {model.input_size}" if model.input_size else ""
        print(f"  classes  {', '.join(model.classes)} ({model.family}{size})")
        origin = "default, from the package registry" if model.builtin else f"added {model.added_at:%Y-%m-%d %H:%M} UTC"
        print(f"  source   {model.source} ({origin})")
        print(f"  license  {model.license}")
        if (catalogued := find_file(model.sha256)) is not None and catalogued.int8:
            print("  cpu      int8 (calibration shipped with Veil; a profile may set int8 = false)" if exact_int8_kernels()
                  else "  cpu      float32 (int8 calibration shipped, but this CPU has no VNNI: its int8 kernels saturate)")
        print(f"  sha256   {model.sha256}")
        print(f"  file     {model.file}")
    if not selection.tasks:
        print("\nactive: the defaults (no `veil models activate` yet)")
    return 1 if broken else 0


@_guarded
def _add(args: argparse.Namespace) -> int:
    from daemon.audit.log import AuditLog
    from daemon.audit.trail import audit_path
    from daemon.models.check import check_contract

    settings, registry = _context(args)
    classes = tuple(c.strip() for c in args.classes.split(",") if c.strip())
    unknown = [c for c in classes if c not in TASKS]
    if unknown or not classes:
        raise ValueError(f"--classes: expected face and/or license_plate, got {args.classes!r}")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", args.name):
        raise ValueError(f"model name {args.name!r}: use letters, digits, _ . - only")
    if any(m.name == args.name for m in registry.models()):
        raise ValueError(f"a model named {args.name!r} is already registered")
    if not args.file.is_file():
        raise ValueError(f"--file: {args.file} is not a file")
    side = check_contract(args.file, name=args.name, family=args.family, classes=classes, input_size=args.input_size)
    model = registry.add(args.name, args.file, family=args.family, classes=classes, input_size=side,
                         license=args.license)
    AuditLog(audit_path(settings)).append("model.add", actor=getpass.getuser(), name=model.name, sha256=model.sha256,
                                          family=model.family, classes=list(model.classes), license=model.license)
    print(f"added {model.name}: {model.file} (sha256 {model.sha256})")
    return 0


@_guarded
def _verify(args: argparse.Namespace) -> int:
    _, registry = _context(args)
    models = [registry.get(args.name)] if args.name else registry.models()
    faults = 0
    for model in models:
        state = registry.state(model)
        faults += state != "ok"
        print(f"{model.name}: {state}")
    print(f"{len(models) - faults} of {len(models)} model(s) ok")
    return 1 if faults else 0


@_guarded
def _activate(args: argparse.Namespace) -> int:
    from daemon.audit.log import AuditLog
    from daemon.audit.trail import audit_path
    from daemon.models.activation import ActivationRefused, activate, gate, unmeasured

    settings, registry = _context(args)
    candidate = registry.get(args.name)
    task = args.task or (candidate.classes[0] if len(candidate.classes) == 1 else None)
    if task is None:
        raise ValueError(f"{candidate.name} declares {', '.join(candidate.classes)}: say which with --task")
    if args.force and not args.reason:
        raise ValueError("--force needs --reason (it is recorded in the audit log)")
    if registry.state(candidate) != "ok":
        raise ActivationRefused(f"{candidate.name}: {registry.state(candidate)} (see `veil models verify`)")
    control_set = args.control_set or (settings.models.control_set if settings else None)
    runtime = RuntimeParams(device=args.device, threads=args.threads, model_dir=registry.model_dir)
    if control_set is None and not args.force:
        raise ActivationRefused("no control set: give --control-set or set [models] control_set")
    if control_set is None:
        result = unmeasured(registry, candidate, task)
    else:
        result = gate(registry, candidate, task, control_set, _profile(settings), runtime)
        print(f"control set {control_set}: {result.images} images, {result.ground_truth} {task} boxes")
        print(f"  {'':<10} {'model':<24} {'mask recall':>11} {'masked outside ground truth':>28}")
        for role, model, measured in (("active", result.active, result.active_measured),
                                      ("candidate", result.candidate, result.candidate_measured)):
            assert measured is not None, "gate measures both models"
            print(f"  {role:<10} {model.name:<24} {measured.mask_recall:>11.4f} {measured.outside_gt:>28.2%}")
    drift_dir = settings.drift.resolved_store_dir(settings.service) if settings else audit_path(None).parent
    activate(registry, result, force=args.force, reason=args.reason, actor=getpass.getuser(),
             audit=AuditLog(audit_path(settings)), drift_store_dir=drift_dir, control_set=control_set)
    forced = " (forced)" if args.force else ""
    print(f"{candidate.name} is now active for {task}{forced}. Reload the service: systemctl reload veil")
    return 0


def _profile(settings: Settings | None) -> Params:
    return settings.profiles[DEFAULT_PROFILE] if settings is not None else Params()
