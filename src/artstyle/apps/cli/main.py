"""The ``artstyle`` command. Every setting of :class:`~artstyle.config.StyleConfig` becomes a flag
(``content_weight`` -> ``--content-weight``) with the field's help text; nothing is declared twice.

Settings are applied in order: ``--preset``, then ``--config FILE.toml``, then the flags.
User errors print one line ``artstyle: error: ...`` and exit 1; Ctrl-C exits 130 and SIGTERM,
which stops a run the same way, 143.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

import click

from artstyle.apps.cli.options import (
    build_config,
    config_options,
)
from artstyle.errors import ArtstyleError, flag
from artstyle.runs.signals import exit_status, sigterm_as_ctrl_c


def _one_line(message: str) -> str:
    return " ".join(message.split())


class _Group(click.Group):
    """Turns user errors into one line ``artstyle: error: ...`` and a non-zero exit (1 for a
    failed run, 2 for a wrong command line, as click's usage errors); Ctrl-C into exit 130."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        with sigterm_as_ctrl_c():
            return self._main(*args, **kwargs)

    def _main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            rv = super().main(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError as e:
            click.echo(e.ctx.get_help() if e.ctx else str(e), err=True)
            sys.exit(2)
        except click.ClickException as e:
            hint = ""
            if isinstance(e, click.UsageError) and e.ctx is not None:
                hint = f" (see '{e.ctx.command_path} --help')"
            click.echo(f"artstyle: error: {_one_line(e.format_message())}{hint}", err=True)
            sys.exit(e.exit_code)
        except click.exceptions.Abort:
            click.echo("artstyle: interrupted", err=True)
            sys.exit(exit_status())
        if isinstance(rv, int) and rv:  # click's standalone_mode=False returns exit codes
            sys.exit(rv)
        return rv

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ArtstyleError as e:  # (in the command line's words: a setting is its flag)
            click.echo(f"artstyle: error: {_one_line(e.worded(flag))}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C while leaving is ignored
            click.echo("artstyle: interrupted", err=True)
            sys.exit(exit_status())
        except OSError as e:  # (the checks before a run name every case we know; this is the net)
            where = str(e.filename or "")
            where = f"{where[:40]}...: " if len(where) > 40 else f"{where}: " if where else ""
            click.echo(f"artstyle: error: {where}{e.strerror or e}", err=True)
            sys.exit(1)
        except MemoryError:
            click.echo(
                "artstyle: error: out of memory; lower --size (memory grows with its square)", err=True
            )
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="artstyle")
def main() -> None:
    """Paint photographs in the style of paintings (Gatys et al. neural style transfer)."""


@main.command("config")
@config_options
def show_config(**kwargs: Any) -> None:
    """Print the settings that a preset, config file and flags add up to, as TOML."""
    cfg = build_config(kwargs)
    for name, value in cfg.to_dict().items():
        click.echo(f"{name} = {_toml_value(value)}")


def _toml_value(v: Any) -> str:
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


@main.command("fetch-weights")
@click.option("--network", type=click.Choice(["vgg19", "vgg16"]), default="vgg19", show_default=True)
@click.option("--weights", default="auto", show_default=True)
def fetch_weights(network: str, weights: str) -> None:
    """Fetch, verify and cache network weights now (later runs are offline)."""
    from artstyle.model.weights import load_weights

    loaded = load_weights(weights, network, log=lambda m: click.echo(m, err=True))
    click.echo(f"ok: {loaded.weights_id}")
