"""`ftstudy tiny-model`: build the tiny Qwen2-shaped model that the tests and the CPU demo run on."""
import click

from ftstudy.cli.main import main


@main.command("tiny-model")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--layers", default=4, show_default=True, help="Decoder layers.")
@click.option("--hidden", default=128, show_default=True, help="Hidden size (a multiple of 8).")
@click.option("--vocab", default=1000, show_default=True, help="BPE vocabulary size, markup tokens included.")
@click.option("--seed", default=0, show_default=True, help="Same seed, byte-identical files.")
@click.option("--pretrain-steps", default=None, type=click.IntRange(min=0),
              help="Next-token steps on the bundled general corpus (0: random weights). [default: 300]")
def tiny_model_cmd(directory, layers, hidden, vocab, seed, pretrain_steps):
    """Build a tiny Qwen2 base model: a locally trained tokenizer, then brief pretraining on a bundled general
    corpus (reused if already built; ~1 minute on 2 cores the first time).

    \b
    Example:
      ftstudy tiny-model ~/.cache/ftstudy/tiny-model
      ftstudy tiny-model /tmp/tiny --layers 2 --hidden 64 --seed 1 --pretrain-steps 0
    """
    from ftstudy.train import tiny
    try:
        steps = tiny.PRETRAIN_STEPS if pretrain_steps is None else pretrain_steps
        click.echo(tiny.build(directory, layers, hidden, vocab, seed, log=lambda m: click.echo(m, err=True),
                              pretrain_steps=steps))
    except ValueError as exc:  # bad sizes, or a folder that is not ours: a one-line error, not a traceback
        raise click.ClickException(str(exc)) from None
