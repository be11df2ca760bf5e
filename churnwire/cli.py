"""The ``churnwire`` command line: the stack, CDC, data loading, features and models."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from churnwire.config import ConfigError, Settings, load_settings

log = logging.getLogger("churnwire")

Command = Callable[[argparse.Namespace, Settings], int]


def _cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from churnwire.embedded.stack import ComponentFailed, Stack

    try:
        statuses = Stack(settings).up(timeout=args.timeout)
    except ComponentFailed as failure:
        print(f"churnwire up: {failure}", file=sys.stderr)
        return 1
    _print_status(statuses, as_json=False)
    print("\nThe stack keeps running; stop it with 'churnwire down'.")
    return 0


def _cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    from churnwire.embedded.stack import Stack

    stopped = Stack(settings).down()
    print(f"stopped: {', '.join(stopped) or 'nothing'}")
    return 0


def _cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from churnwire.embedded.stack import Stack

    if args.wait_idle:
        from churnwire.streams.idle import wait_idle

        report = wait_idle(settings, args.timeout)
        if not report.idle:
            print(f"churnwire status: not idle after {report.seconds:.1f} s: "
                  f"{report.waiting_for}", file=sys.stderr)
            return 4
        print(f"idle: CDC and consumer lag are zero ({report.seconds:.1f} s)", file=sys.stderr)
    statuses = Stack(settings).status()
    _print_status(statuses, as_json=args.json)
    return 0 if all(status.healthy for status in statuses.values()) else 3


def _print_status(statuses: dict, as_json: bool) -> None:  # type: ignore[type-arg]
    if as_json:
        print(json.dumps({name: status.to_json() for name, status in statuses.items()}))
        return
    for name, status in statuses.items():
        mark = "ok  " if status.healthy else "DOWN"
        where = "external" if status.external else f"pid {status.pid}"
        print(f"{mark} {name:<9} {status.url}  ({where}) {status.detail}")


def _cmd_setup(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from churnwire.data.schema import apply_schema
    from churnwire.topics import all_topics, ensure_topics

    asyncio.run(apply_schema(settings.postgres_url))
    ensure_topics(settings, all_topics(settings))
    print("schema applied and topics present")
    return 0


def _cmd_cost(args: argparse.Namespace, settings: Settings) -> int:
    from churnwire.deploy.cost import Workload, estimate_cost, load_prices, render

    workload = Workload(
        customers=args.customers,
        orders_per_day=args.orders_per_day,
        lookups_per_day=args.lookups_per_day,
        events_per_order=args.events_per_order,
        peak_factor=args.peak_factor,
        sweep_interval_days=settings.sweep_interval_days,
        include_database=args.include_database,
    )
    prices = load_prices(args.prices)
    print(render(estimate_cost(workload, prices), workload, prices))
    return 0


def _positive_number(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}")
    return number


def _cmd_cdc(args: argparse.Namespace, settings: Settings) -> int:
    from churnwire.cdc.runner import run_cdc

    return run_cdc(settings)


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from churnwire.demo import run_demo

    return run_demo(settings)


def _cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from churnwire.streams.app import run_worker

    return run_worker(settings, args.name)


def _cmd_gateway(args: argparse.Namespace, settings: Settings) -> int:
    from churnwire.gateway.server import run_gateway

    return run_gateway(settings)


def _cmd_insights(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "eval":
        from churnwire.insight_worker.evaluation import run_evaluation

        return run_evaluation(settings, args.out, args.variants, args.alerts)
    from churnwire.insight_worker.consumer import run_insights

    return run_insights(settings)


def _cmd_kb(args: argparse.Namespace, settings: Settings) -> int:
    from churnwire.insight_worker.knowledge import SHIPPED_PLAYBOOKS, load_knowledge_base

    directory = Path(args.directory) if args.directory else SHIPPED_PLAYBOOKS
    if not directory.is_dir():
        print(f"churnwire kb load: no such directory: {directory}", file=sys.stderr)
        return 2
    try:
        passages = load_knowledge_base(settings, directory)
    except FileNotFoundError as error:
        print(f"churnwire kb load: {error}", file=sys.stderr)
        return 2
    where = settings.insight.qdrant_url or settings.insight.kb_path
    print(f"loaded {passages} passages from {directory} into {where}")
    return 0


def _cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    from churnwire.gateway import keys

    if args.action == "create":
        # The key alone on standard output, so that scripts can capture it.
        print(keys.create_api_key(settings.redis_url, args.name, args.scope))
        print(f"created key {args.name!r} ({args.scope}); it is shown only once",
              file=sys.stderr)
    elif args.action == "list":
        for key in keys.list_api_keys(settings.redis_url):
            print(f"{key['name']:<24} {key['scope']:<6} {key['created_at']}  {key['hash']}")
    else:
        revoked = keys.revoke_api_keys(settings.redis_url, args.name)
        print(f"revoked {revoked} key(s) named {args.name!r}")
        return 0 if revoked else 1
    return 0


def _cmd_features(args: argparse.Namespace, settings: Settings) -> int:
    from churnwire.state.table import write_parquet
    from churnwire.timeutil import end_of_day_micros

    as_of = end_of_day_micros(args.as_of)
    if args.action == "build":
        from churnwire.state.offline import build_offline
        from churnwire.state.web_log import read_web_log

        rows = build_offline(settings.postgres_url, as_of, read_web_log(settings, as_of))
    else:
        from churnwire.state.snapshot import snapshot_online

        rows = snapshot_online(settings.redis_url, as_of)
    count = write_parquet(rows, args.out)
    print(f"{count} customers, as of {args.as_of} 23:59:59.999999 UTC -> {args.out}")
    return 0


def _cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from churnwire.models.export import ParityFailed
    from churnwire.models.training import TrainingError, train_model

    cutoffs = [*(args.cutoffs or []), args.cutoff]
    try:
        result = train_model(settings, cutoffs, args.horizon, args.holdout, args.seed,
                             strict_time=args.strict_time)
    except (TrainingError, ParityFailed) as error:
        print(f"churnwire train: {error}", file=sys.stderr)
        return 1
    model = result.card["metrics"]["model"]
    print(f"registered model {result.version} -> {result.path}")
    print(f"held-out AUC {model['auc']}, PR-AUC {model['pr_auc']}, accuracy "
          f"{model['accuracy_at_0_5']}, Brier {model['brier']}; "
          f"card: {result.path / 'card.md'}")
    return 0


def _cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    from churnwire.models.registry import ModelRegistry, ModelRejected

    registry = ModelRegistry(settings.model_dir)
    if args.action == "promote":
        try:
            registry.promote(args.version)
        except ModelRejected as error:
            print(f"churnwire models promote: refused: {error}", file=sys.stderr)
            return 1
        print(f"active model: {args.version} (running workers switch within seconds)")
        return 0
    versions = registry.versions()
    if args.json:
        print(json.dumps([info.to_json() for info in versions], indent=2))
        return 0
    for info in versions:
        mark = "*" if info.active else " "
        auc = info.metrics.get("auc", "-")
        print(f"{mark} {info.version}  created {info.created_at}  held-out AUC {auc}")
    if not versions:
        print(f"no models under {settings.model_dir}; train one with 'churnwire train'",
              file=sys.stderr)
    return 0


def _cmd_score(args: argparse.Namespace, settings: Settings) -> int:
    from churnwire.models.batch import FeatureTableError, score_table
    from churnwire.models.registry import ModelRegistry, ModelRejected

    try:
        version, rows = score_table(Path(args.features), Path(args.out),
                                    ModelRegistry(settings.model_dir), args.model)
    except (ModelRejected, FeatureTableError) as error:
        print(f"churnwire score: {error}", file=sys.stderr)
        return 1
    print(f"{rows} customers scored with model {version} -> {args.out}")
    return 0


def _cmd_load_cdnow(args: argparse.Namespace, settings: Settings) -> int:
    from churnwire.data.cdnow import load_cdnow

    report = load_cdnow(settings.postgres_url, path=args.file, until=args.until)
    print(report.summary())
    return 0


def _cmd_load_synthetic(args: argparse.Namespace, settings: Settings) -> int:
    from churnwire.data.synthetic import load_synthetic

    report = load_synthetic(
        settings.postgres_url, customers=args.customers, orders=args.orders, seed=args.seed
    )
    print(report.summary())
    return 0


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {value!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every churnwire command."""
    parser = argparse.ArgumentParser(prog="churnwire", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="start the stack and wait until it is healthy")
    up.add_argument("--timeout", type=float, default=180.0, help="seconds per component")
    up.set_defaults(run=_cmd_up)
    commands.add_parser("demo", help="run the whole pipeline on CDNOW, narrated").set_defaults(
        run=_cmd_demo
    )
    commands.add_parser("down", help="stop what 'up' started").set_defaults(run=_cmd_down)
    status = commands.add_parser("status", help="health of every component")
    status.add_argument("--json", action="store_true", help="one JSON object per component")
    status.add_argument(
        "--wait-idle", action="store_true",
        help="first wait until CDC and consumer lag are zero (exit 4 on timeout)",
    )
    status.add_argument("--timeout", type=float, default=300.0, help="seconds for --wait-idle")
    status.set_defaults(run=_cmd_status)
    commands.add_parser(
        "setup", help="create the schema and topics if missing (what 'up' does first)"
    ).set_defaults(run=_cmd_setup)
    commands.add_parser("cdc", help="run Debezium CDC in the foreground").set_defaults(
        run=_cmd_cdc
    )

    worker = commands.add_parser("worker", help="run the stream worker in the foreground")
    worker.add_argument("--name", default="worker", help="distinguishes workers on one host")
    worker.set_defaults(run=_cmd_worker)

    commands.add_parser("gateway", help="run the HTTP gateway in the foreground").set_defaults(
        run=_cmd_gateway
    )
    insights = commands.add_parser(
        "insights", help="run the insight worker in the foreground ('eval': compare prompts)"
    )
    insights.set_defaults(run=_cmd_insights, action="run")
    insight_actions = insights.add_subparsers(dest="action")
    evaluate = insight_actions.add_parser(
        "eval", help="score every prompt variant on a fixed set of alerts with the real model"
    )
    evaluate.add_argument("--out", default="docs/insights-eval.md",
                          help="Markdown table to write (a .json beside it holds the figures)")
    evaluate.add_argument("--variants", nargs="*", help="prompt versions (default: all)")
    evaluate.add_argument("--alerts", type=int, default=6, help="alerts per variant")
    evaluate.set_defaults(run=_cmd_insights)
    kb = commands.add_parser("kb", help="the knowledge base of retention playbooks")
    kb_actions = kb.add_subparsers(dest="action", required=True)
    kb_load = kb_actions.add_parser("load", help="embed the Markdown playbooks of DIR into Qdrant")
    kb_load.add_argument("directory", nargs="?",
                         help="folder of *.md playbooks (default: the shipped ones)")
    kb_load.set_defaults(run=_cmd_kb)

    api_keys = commands.add_parser("keys", help="API keys of the gateway")
    key_actions = api_keys.add_subparsers(dest="action", required=True)
    create = key_actions.add_parser("create", help="create a key; prints it once")
    create.add_argument("--name", required=True, help="who or what uses the key")
    create.add_argument("--scope", choices=["read", "write"], default="read",
                        help="write also allows POST /v1/events (and implies read)")
    create.set_defaults(run=_cmd_keys)
    key_actions.add_parser("list", help="names and scopes (never the keys)").set_defaults(
        run=_cmd_keys
    )
    revoke = key_actions.add_parser("revoke", help="delete every key with this name")
    revoke.add_argument("--name", required=True)
    revoke.set_defaults(run=_cmd_keys)

    features = commands.add_parser("features", help="feature tables as Parquet")
    actions = features.add_subparsers(dest="action", required=True)
    for action, help_text in (
        ("build", "compute from PostgreSQL, point-in-time correct"),
        ("snapshot", "read the online state from Redis"),
    ):
        table = actions.add_parser(action, help=help_text)
        table.add_argument("--as-of", type=_date, required=True,
                           help="evaluate at the end of this day (UTC)")
        table.add_argument("--out", required=True, help="Parquet file to write")
        table.set_defaults(run=_cmd_features)

    _add_model_commands(commands)
    cost = commands.add_parser(
        "cost", help="estimate AWS dollars per customer per month from measured throughputs"
    )
    cost.add_argument("--customers", type=int, required=True, help="customers in the shop")
    cost.add_argument("--orders-per-day", type=_positive_number, required=True)
    cost.add_argument("--lookups-per-day", type=float, default=0.0,
                      help="gateway requests per day (default 0)")
    cost.add_argument("--events-per-order", type=_positive_number, default=1.0,
                      help="change events each order causes (inserts, status updates)")
    cost.add_argument("--peak-factor", type=_positive_number, default=3.0,
                      help="busiest hour's rate over the daily average")
    cost.add_argument("--include-database", action="store_true",
                      help="also price the shop's PostgreSQL on RDS")
    cost.add_argument("--prices", type=Path,
                      help="a price file like churnwire/deploy/aws_prices.json")
    cost.set_defaults(run=_cmd_cost)

    load = commands.add_parser("load", help="load data into PostgreSQL")
    sources = load.add_subparsers(dest="source", required=True)
    cdnow = sources.add_parser("cdnow", help="the real CDNOW transaction log")
    cdnow.add_argument("--until", type=_date, help="load purchases up to this date (inclusive)")
    cdnow.add_argument("--file", help="a CDNOW-format file (default: the one lifetimes ships)")
    cdnow.set_defaults(run=_cmd_load_cdnow)
    synthetic = sources.add_parser("synthetic", help="generated customers and orders")
    synthetic.add_argument("--customers", type=int, default=10_000)
    synthetic.add_argument("--orders", type=int, default=100_000)
    synthetic.add_argument("--seed", type=int, default=7)
    synthetic.set_defaults(run=_cmd_load_synthetic)
    return parser


def _add_model_commands(commands: Any) -> None:
    train = commands.add_parser("train", help="train, check ONNX parity, register a model")
    train.add_argument("--cutoff", type=_date, required=True,
                       help="the evaluated cutoff: held-out metrics are computed here")
    train.add_argument("--cutoffs", type=_date, nargs="*",
                       help="earlier cutoffs whose training customers are added")
    train.add_argument("--horizon", type=int, default=90,
                       help="days after a cutoff without an order that count as churn")
    train.add_argument("--holdout", type=float, default=0.2, help="share of customers held out")
    train.add_argument("--seed", type=int, default=7)
    train.add_argument("--strict-time", action="store_true",
                       help="train only on cutoffs whose label window ends by --cutoff")
    train.set_defaults(run=_cmd_train)

    models = commands.add_parser("models", help="the model registry")
    model_actions = models.add_subparsers(dest="action", required=True)
    listing = model_actions.add_parser("list", help="registered versions, the active one marked")
    listing.add_argument("--json", action="store_true", help="a JSON list of versions")
    listing.set_defaults(run=_cmd_models)
    promote = model_actions.add_parser("promote", help="make a version the active model")
    promote.add_argument("version")
    promote.set_defaults(run=_cmd_models)

    score = commands.add_parser("score", help="score a feature table (Parquet) offline")
    score.add_argument("--features", required=True, help="Parquet from 'features build'")
    score.add_argument("--out", required=True, help="Parquet of customer_id, churn_probability")
    score.add_argument("--model", help="a registered version (default: the active one)")
    score.set_defaults(run=_cmd_score)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``churnwire`` command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"churnwire: configuration error: {error}", file=sys.stderr)
        return 2
    run: Command = args.run
    return run(args, settings)
