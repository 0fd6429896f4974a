"""`mkubectl`: the command line of mkube, with kubectl's commands, flags and output.

Every failure ends as one clear line on stderr and a non-zero exit (`run` is the only
place exceptions are turned into messages); `-v 6` and above also print the traceback of
unexpected errors.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback

import click

from mkube.api.errors import ApiError
from mkube.client.errors import ConfigError
from mkube.kubectl.commands import COMMANDS
from mkube.kubectl.context import Kube, Settings
from mkube.kubectl.errors import CommandError, ExitError, error_line
from mkube.kubectl.group import Group

# Global flags may appear anywhere on the command line, as with kubectl's persistent
# flags; they are moved in front of the subcommand before click parses.
_VALUE_FLAGS = {"--kubeconfig", "--context", "-n", "--namespace", "-s", "--server", "--token", "-v", "--v",
                "--request-timeout"}
_BOOL_FLAGS = {"--insecure-skip-tls-verify"}
_SHORT_ALIASES = {"-n": "--namespace", "-s": "--server", "-v": "--v"}

_state = {"verbosity": 0}


def hoist_global_flags(args: list[str]) -> list[str]:
    """Move global flags (and their values) before the subcommand; `--` ends the scan."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            rest.extend(args[i:])
            break
        name, eq, value = a.partition("=")
        if name in _VALUE_FLAGS:
            long = _SHORT_ALIASES.get(name, name)
            if eq:
                front.append(f"{long}={value}")
                i += 1
            elif i + 1 < len(args):
                front += [long, args[i + 1]]
                i += 2
            else:
                front.append(a)
                i += 1
            continue
        if name in _BOOL_FLAGS:
            front.append(a)
        elif len(a) > 2 and a[:2] in _SHORT_ALIASES and not a.startswith("--"):
            front.append(f"{_SHORT_ALIASES[a[:2]]}={a[2:]}")  # -nkube-system, -v6
        else:
            rest.append(a)
        i += 1
    return front + rest


def _setup_logging(verbosity: int) -> None:
    level = logging.DEBUG if verbosity >= 8 else logging.INFO if verbosity >= 6 else logging.ERROR
    logging.basicConfig(level=level, format="%(levelname).1s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(level)
    logging.getLogger("httpcore").setLevel(logging.DEBUG if verbosity >= 9 else logging.WARNING)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--kubeconfig", help="Path to the kubeconfig file.")
@click.option("--context", help="The kubeconfig context to use.")
@click.option("-n", "--namespace", help="The namespace of the request.")
@click.option("-s", "--server", help="The address and port of the API server.")
@click.option("--token", help="Bearer token for the API server.")
@click.option("--insecure-skip-tls-verify", is_flag=True, help="Do not verify the server's certificate.")
@click.option("-v", "--v", "verbosity", type=int, default=0, help="Log verbosity (6: requests).")
@click.option("--request-timeout", type=float, default=30.0, help="Seconds to wait for one request.")
@click.pass_context
def cli(ctx: click.Context, kubeconfig: str | None, context: str | None, namespace: str | None,
        server: str | None, token: str | None, insecure_skip_tls_verify: bool, verbosity: int,
        request_timeout: float) -> None:
    """mkubectl controls the mkube cluster manager (kubectl's commands and output)."""
    _state["verbosity"] = verbosity
    _setup_logging(verbosity)
    kube = Kube(Settings(kubeconfig=kubeconfig, context=context, namespace=namespace, server=server,
                         token=token, insecure_skip_tls_verify=insecure_skip_tls_verify,
                         verbosity=verbosity, request_timeout=request_timeout))
    ctx.obj = kube
    ctx.call_on_close(kube.close)


for _command in COMMANDS:
    cli.add_command(_command)


def _err(text: str) -> None:
    click.echo(text.rstrip("\n"), err=True)


def run(args: list[str]) -> int:
    """Run one command line; returns the exit code. Never raises (except SystemExit)."""
    args = hoist_global_flags(args)
    if not [a for a in args if not a.startswith("-")]:
        args = [*args, "--help"]
    try:
        result = cli.main(args=args, prog_name="mkubectl", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except ExitError as e:
        return e.code
    except CommandError as e:
        _err(f"error: {e.message}")
        return e.exit_code
    except ApiError as e:
        _err(error_line(e))
        return 1
    except ConfigError as e:
        _err(f"error: {e}")
        return 1
    except click.NoSuchOption as e:
        _err(f"error: unknown flag: {e.option_name}")
        path = e.ctx.command_path if e.ctx else "mkubectl"
        _err(f"See '{path} -h' for help and examples")
        return 1
    except click.UsageError as e:
        _err(f"error: {e.format_message()}")
        return 1
    except click.ClickException as e:
        _err(f"error: {e.format_message()}")
        return 1
    except (click.Abort, KeyboardInterrupt):
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # noqa: BLE001 - the last line of defence: never a traceback by default
        _err(f"error: {e or type(e).__name__}")
        if _state["verbosity"] >= 6:
            traceback.print_exc()
        return 1


def main() -> None:
    """The `mkubectl` console script."""
    code = run(sys.argv[1:])
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
