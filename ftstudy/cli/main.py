"""The `ftstudy` command line: thin verbs that call one library function each, importing it lazily so that
`ftstudy --help` stays fast."""
from __future__ import annotations

import json
import sys

import click

from ftstudy import __version__

METHOD = click.Choice(["lora", "qlora", "full", "dpo"])
HARDWARE = click.Choice(["dgx-spark", "dgx-spark-x2", "h100", "h100x8", "cpu"])
NODES = click.option("--nodes", type=click.IntRange(min=1),
                     help="Machines for one job: the profile's GPUs per node × N (default: the profile's own).")
COUNT_TOKENS = click.option(
    "--count-tokens/--no-count-tokens", default=True, show_default=True,
    help="Prepare measures every row's tokens with Axolotl's own preprocess (one more Axolotl start, ~10-30 s on "
         "a CPU) and stops when a source's rows are all longer than sequence_len; without it, the planner uses "
         "the registry's mean tokens per row.")


def judge_options(command):
    """The judge's four options, the same on `bench` and `run`."""
    for opt in reversed((
            click.option("--judge-url", help="OpenAI-compatible endpoint of the judge model (judged benchmarks)."),
            click.option("--judge-model", help="Judge model name at --judge-url."),
            click.option("--judge-api-key-env", default="OPENAI_API_KEY", show_default=True, metavar="VAR",
                         help="Environment variable holding the judge's API key (sent as a bearer token; never "
                              "written)."),
            click.option("--judge-concurrency", type=click.IntRange(1, 64), default=4, show_default=True,
                         help="Judge requests in flight at once."))):
        command = opt(command)
    return command

def hardware_name(hardware: str, nodes: int | None) -> str:
    """`--hardware H --nodes N` as one profile name (`h100 --nodes 2` -> `h100-2nodes`)."""
    from ftstudy.config.profiles import with_nodes

    return with_nodes(hardware, nodes)


class Group(click.Group):
    """Turns ftstudy's expected failures into clean one-line errors instead of tracebacks."""

    def invoke(self, ctx):
        from ftstudy.core import redact
        from ftstudy.core.errors import UserError

        try:
            return super().invoke(ctx)
        except UserError as exc:  # a URL in the message (a --judge-url, say) is shown without its credentials
            # a UserError that is also a KeyError prints as its repr ('...'): only that one loses its quotes, so a
            # message that ends with a quoted name keeps its closing quote
            said = str(exc)
            if isinstance(exc, KeyError) and exc.args and said == repr(exc.args[0]):
                said = str(exc.args[0])
            raise click.ClickException(redact.text(said)) from None
        except OSError as exc:  # disk full, a folder that cannot be written: say what and where, no traceback
            if exc.filename is None or isinstance(exc, (BrokenPipeError, ConnectionError)):
                raise
            raise click.ClickException(f"cannot write or read {exc.filename}: {exc.strerror}. Nothing was left "
                                       "half-written (ftstudy writes through temporary files); free space or fix "
                                       "the path and rerun - completed work is kept.") from None

    def list_commands(self, ctx):
        return list(self.commands)  # in the order of the data flow, not alphabetical


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ftstudy")
def main():
    """Run a fine-tuning study: one base model fine-tuned eleven ways, each benchmarked before and after.

    \b
    Example:
      ftstudy list
      ftstudy gen code --hardware h100 -o code-lora.yaml
      ftstudy validate code-lora.yaml
    """


@main.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects instead of a table.")
def list_cmd(as_json):
    """List the experiments with their datasets, methods and primary benchmark.

    \b
    Example:
      ftstudy list
      ftstudy list --json | jq '.[].id'
    """
    from ftstudy.cli import show

    rows = show.list_rows()
    click.echo(json.dumps(rows, indent=2) if as_json else show.list_table(rows))


@main.command("show")
@click.argument("exp")
@click.option("--json", "as_json", is_flag=True, help="Print the experiment as JSON.")
def show_cmd(exp, as_json):
    """Show everything about one experiment: data and field mapping, methods, hyperparameters per method,
    sequence length, benchmarks (primary, secondary, guards), the plan's expected figures and hours.

    \b
    Example:
      ftstudy show tool_use
    """
    from ftstudy.cli import show

    click.echo(show.show_json(exp) if as_json else show.show_text(exp))


@main.command("gen")
@click.argument("exp", required=False)
@click.option("--method", type=METHOD, help="Default: the experiment's first method.")
@click.option("--hardware", type=HARDWARE, default="dgx-spark", show_default=True, help="Hardware profile.")
@click.option("--base-model", default="Qwen/Qwen2.5-7B", show_default=True, help="Hub id or local path.")
@click.option("--source", "sources", multiple=True, metavar="ID",
              help="Train on these sources (ids from `ftstudy show EXP`) instead of the default mixture.")
@click.option("--data", multiple=True, help="File or hub id replacing the experiment's sources, in order.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override any Axolotl key (value parsed as YAML).")
@NODES
@click.option("-o", "--output", help="Output file, or - for stdout. Default: axolotl_configs/<exp>/<method>-<hw>.yaml.")
@click.option("--all", "all_", is_flag=True, help="Regenerate every committed config under axolotl_configs/.")
@click.option("--check", is_flag=True, help="With --all: write nothing, exit 1 naming stale files.")
def gen_cmd(exp, method, hardware, base_model, sources, data, sets, nodes, output, all_, check):
    """Generate one Axolotl YAML for an experiment × method × hardware profile.

    \b
    Example:
      ftstudy gen code                                  # LoRA, DGX Spark, Qwen2.5-7B
      ftstudy gen classification --method qlora --hardware h100 --set learning_rate=1e-4 -o -
      ftstudy gen instruction --source openorca         # OpenOrca instead of FLAN
      ftstudy gen instruction --method full --hardware h100 --nodes 2   # ZeRO over 2 nodes
      ftstudy gen --all --check                         # are the committed configs current?
    """
    from ftstudy.config import gen

    if all_:
        stale = gen.write_all(check=check)
        if check and stale:
            click.echo("stale (run `ftstudy gen --all`):\n" + "\n".join(f"  {p}" for p in stale), err=True)
            sys.exit(1)
        click.echo(f"{'checked' if check else 'wrote'} {len(gen.golden())} configs; {len(stale)} {'stale' if check else 'changed'}")
        return
    if not exp:
        raise click.UsageError("give an experiment id (see `ftstudy list`) or --all")
    path = gen.write_one(exp, method, hardware_name(hardware, nodes), base_model, data, sets, output, sources)
    if path is not None:
        click.echo(f"wrote {path}", err=True)


@main.command("validate")
@click.argument("files", nargs=-1, type=click.Path())
@click.option("--all", "all_", is_flag=True, help="Validate every committed config under axolotl_configs/.")
@click.option("--hardware", type=HARDWARE, help="Profile to check against (default: read from the config header).")
@click.option("--deep", is_flag=True, help="Require Axolotl's own validation (asked anyway when the train "
              "environment exists): fail rather than fall back to the schema-only check.")
@click.option("--strict", is_flag=True, help="Warnings (keys Axolotl ignores, deprecated forms) are errors too.")
@click.option("--json", "as_json", is_flag=True, help="Per-file results as JSON.")
def validate_cmd(files, all_, hardware, deep, strict, as_json):
    """Validate Axolotl YAML (files, or every YAML under a folder): the pinned Axolotl's own validation with
    the hardware profile's capabilities (train environment; else a schema-only check, labelled), then
    ftstudy's own rules, labelled as ftstudy's.

    Prints every problem at once, each with its key path and a suggestion; exits 1 if any is an error.
    A key Axolotl ignores is a warning; a near-miss of a known key (its value would be lost) is an error.

    \b
    Example:
      ftstudy validate my.yaml
      ftstudy validate --all --strict
      ftstudy validate --json path/to/axolotl/examples/
      ftstudy validate --deep runs/code/lora-h100-1/config.yaml
    """
    from ftstudy.cli import validate as validate_cli

    ok = validate_cli.run(files, all_, hardware, deep, click.echo, strict, as_json)
    sys.exit(0 if ok else 1)


@main.command("doctor")
@click.option("--json", "as_json", is_flag=True)
def doctor_cmd(as_json):
    """Show the tool environments ftstudy found, their versions, GPU or not, and what is missing.

    \b
    Example:
      ftstudy doctor
    """
    from ftstudy.core import tool_envs as envs
    from ftstudy.cli import show

    report = envs.doctor()
    click.echo(json.dumps(report, indent=2) if as_json else show.doctor_text(report))


@main.command("setup")
@click.argument("names", nargs=-1)
@click.option("--bigcode-source", metavar="PATH_OR_URL", envvar="FTSTUDY_BIGCODE_SOURCE",
              help="bigcode-evaluation-harness source (archive, folder or URL; it is not on PyPI). "
                   "Default: ../shared/third_party/bigcode-evaluation-harness-*.tar.gz beside the project.")
def setup_cmd(names, bigcode_source):
    """Build the pinned tool environments (default: train and eval).

    \b
    Example:
      ftstudy setup               # train + eval
      ftstudy setup bfcl          # an optional harness
      ftstudy setup bigcode --bigcode-source ./bigcode-evaluation-harness-8fc5bae6.tar.gz
    """
    from ftstudy.core import tool_envs as envs

    for name in names or ("train", "eval"):
        if name not in envs.ENVS:
            raise click.BadParameter(f"unknown environment {name!r}; known: {', '.join(envs.ENVS)}")
        envs.setup(name, log=lambda m: click.echo(m, err=True), source=bigcode_source if name == "bigcode" else None)


# The verbs of each later stage live in their own module (lazy imports inside, so `--help` stays fast) and register
# themselves on `main`; imported here explicitly, so a renamed or broken module fails loudly, commands not lost.
from ftstudy.cli import data, train, bench, study, plan, score, tiny, serve  # noqa: E402,F401,I001 (data-flow order)
