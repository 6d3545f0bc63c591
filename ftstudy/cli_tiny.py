"""`ftstudy tiny-model`: build the tiny Qwen2-shaped model that the tests and the CPU demo run on."""
import click

from ftstudy.cli import main


@main.command("tiny-model")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--layers", default=4, show_default=True, help="Decoder layers.")
@click.option("--hidden", default=128, show_default=True, help="Hidden size (a multiple of 8).")
@click.option("--vocab", default=1000, show_default=True, help="BPE vocabulary size, markup tokens included.")
@click.option("--seed", default=0, show_default=True, help="Same seed, byte-identical files.")
def tiny_model_cmd(directory, layers, hidden, vocab, seed):
    """Build a tiny random-weight Qwen2 model with a locally trained tokenizer (reused if already built).

    \b
    Example:
      ftstudy tiny-model ~/.cache/ftstudy/tiny-model
      ftstudy tiny-model /tmp/tiny --layers 2 --hidden 64 --seed 1
    """
    from ftstudy import tiny
    try:
        click.echo(tiny.build(directory, layers, hidden, vocab, seed, log=lambda m: click.echo(m, err=True)))
    except ValueError as exc:  # bad sizes, or a folder that is not ours: a one-line error, not a traceback
        raise click.ClickException(str(exc)) from None
