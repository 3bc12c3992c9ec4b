"""``trustproxy`` command line: serve, policy check/test/explain/schema, audit verify, models pull,
hash-key."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys

import trustproxy._offline  # noqa: F401


class _NoTextFilter(logging.Filter):
    """Our log lines carry ids, types and counts only; third-party loggers stay quiet."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.startswith("trustproxy") or record.levelno >= logging.WARNING


def _setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(_NoTextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def _serve(args: argparse.Namespace) -> int:
    from trustproxy.errors import PolicyError
    from trustproxy.server import run
    from trustproxy.settings import load_settings

    try:
        settings = load_settings(args.config, host=args.host, port=args.port, policy_dir=args.policy_dir,
                                 cpu_affinity=args.cpu_affinity)
    except PolicyError as err:
        for p in err.problems:
            print(f"error: {p}", file=sys.stderr)
        return 2
    _setup_logging(settings.log_level)
    from trustproxy.errors import TrustProxyError
    from trustproxy.server.workers import cpu_plan, default_workers, pin_process, report_start_failure, serve

    workers = args.workers or settings.workers or default_workers()
    try:
        cpus = cpu_plan(settings.cpu_affinity, workers)
        if workers > 1:
            code = serve(settings, workers, cpus)
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        if cpus and pin_process(cpus[0]):
            logging.getLogger("trustproxy.workers").info("serving in one process, pinned to CPU %s", cpus[0])
        run(settings)
    except (PolicyError, TrustProxyError) as err:
        return report_start_failure(err, settings)
    # Drained and cleaned up (audit log closed). Skip the interpreter's teardown of torch, spaCy
    # and litellm modules, which takes seconds a pod would otherwise spend in Terminating.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _policy(args: argparse.Namespace) -> int:
    from trustproxy.policy import commands

    if args.policy_cmd == "check":
        return commands.check(args.paths)
    if args.policy_cmd == "test":
        return commands.test(args.paths)
    if args.policy_cmd == "explain":
        text = sys.stdin.read() if args.text == "-" else args.text
        return commands.explain(args.policy, text, args.policy_dir, reply=args.reply)
    if args.policy_cmd == "init":
        return commands.init(args.dir, force=args.force)
    return commands.schema(args.out)


def _audit(args: argparse.Namespace) -> int:
    from trustproxy.audit import verify

    return verify(args.files, partial=args.partial, state_path=args.state, rotated=args.rotated)


def _models(args: argparse.Namespace) -> int:
    from trustproxy.toxicity.commands import pull

    return pull(args.variant, args.dest)


def _hash_key(args: argparse.Namespace) -> int:
    from trustproxy.settings import hash_key

    key = args.key or getpass.getpass("client API key: ")
    print(hash_key(key))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trustproxy", description="An OpenAI-compatible trust layer for LLMs.")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("serve", help="run the proxy")
    s.add_argument("--config", help="trustproxy.yaml (default: $TRUSTPROXY_CONFIG or the embedded echo demo)")
    s.add_argument("--host", help="listen address (default 127.0.0.1)")
    s.add_argument("--port", type=int, help="listen port (default 8080)")
    s.add_argument("--policy-dir", help="policy directory (default ./policies if present, else the packaged defaults)")
    s.add_argument("--workers", type=int, default=None,
                   help="worker processes sharing the port (default: $TRUSTPROXY_WORKERS, else the CPUs this "
                        "process may use: affinity and cgroup quota); 1 serves in this process")
    s.add_argument("--cpu-affinity", default=None,
                   help="pin each worker to one CPU: auto (default: only when this process may run on exactly "
                        "as many CPUs as workers), off, or a CPU list such as 0,1 or 0-3")
    s.set_defaults(func=_serve)

    pol = sub.add_parser("policy", help="check, test and explain policy files")
    psub = pol.add_subparsers(dest="policy_cmd", required=True)
    c = psub.add_parser("check", help="validate policy files; non-zero exit on any problem")
    c.add_argument("paths", nargs="*", default=["policies"])
    t = psub.add_parser("test", help="run the golden tests inside policy files")
    t.add_argument("paths", nargs="*", default=["policies"])
    e = psub.add_parser("explain", help="dry run: what would be detected and what the provider would see")
    e.add_argument("--policy", default="default")
    e.add_argument("--policy-dir", default="policies")
    e.add_argument("--reply", default=None, help="a scripted provider reply: show what the user would get back")
    e.add_argument("text", help="the text or a request body (JSON), or - to read standard input")
    sc = psub.add_parser("schema", help="write the policy JSON Schema")
    sc.add_argument("--out", default="policies/policy.schema.json")
    ini = psub.add_parser("init", help="copy the packaged default policies into DIR for editing")
    ini.add_argument("dir")
    ini.add_argument("--force", action="store_true", help="overwrite files that exist")
    pol.set_defaults(func=_policy)

    a = sub.add_parser("audit", help="audit trail tools")
    asub = a.add_subparsers(dest="audit_cmd", required=True)
    v = asub.add_parser("verify", help="check the hash chain of audit files (in order)")
    v.add_argument("files", nargs="+")
    v.add_argument("--partial", action="store_true", help="the first file does not start the chain")
    v.add_argument("--state", default=None, help="chain state file (<path>.head) to check the end against")
    v.add_argument("--rotated", action="store_true", help="include rotated siblings FILE.N, oldest first")
    a.set_defaults(func=_audit)

    m = sub.add_parser("models", help="model checkpoints")
    msub = m.add_subparsers(dest="models_cmd", required=True)
    pl = msub.add_parser("pull", help="fetch detoxify checkpoints ahead of time (needs network; for image builds)")
    pl.add_argument("--variant", action="append", default=None, help="original, unbiased, multilingual")
    pl.add_argument("--dest", default=None)
    m.set_defaults(func=_models)

    hk = sub.add_parser("hash-key", help="print the SHA-256 of a client API key for the config")
    hk.add_argument("--key", default=None, help="the key (prompted if omitted)")
    hk.set_defaults(func=_hash_key)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "variant", "x") is None:
        args.variant = ["original"]
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
