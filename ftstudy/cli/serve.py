"""`ftstudy serve`: one model behind an OpenAI-compatible server on loopback, until Ctrl-C."""
from __future__ import annotations

import click

from ftstudy.cli.main import main


@main.command("serve")
@click.argument("model")
@click.option("--adapter", type=click.Path(exists=True, file_okay=False), help="LoRA adapter folder (vLLM only).")
@click.option("--engine", type=click.Choice(["vllm", "transformers"]), help="Default: vllm with a GPU, else transformers.")
@click.option("--port", type=int, help="Default: a free port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Listen address (loopback unless you mean otherwise).")
@click.option("--max-model-len", type=int, help="vLLM context length (default: the model's).")
@click.option("--log", "log_path", type=click.Path(dir_okay=False), help="Server log file (default: a temporary file).")
@click.option("--dry-run", is_flag=True, help="Print the exact command and start nothing.")
def serve_cmd(model, adapter, engine, port, host, max_model_len, log_path, dry_run):
    """Serve MODEL (hub id or local folder) with an OpenAI-compatible API until Ctrl-C.

    Prints the base URL once the server answers; requests name the model as printed. On CPU it runs
    `transformers serve` from the eval environment, which cannot apply an adapter: serve the merged
    model (`ftstudy merge RUN`, then RUN/merged) instead, or opt in to vLLM on CPU (`ftstudy setup vllm`,
    then --engine vllm).

    \b
    Example:
      ftstudy serve /models/tiny                         # CPU: transformers serve
      ftstudy serve Qwen/Qwen2.5-7B --adapter runs/code/lora-h100-1a2b --port 8000
      ftstudy serve Qwen/Qwen2.5-7B --engine vllm --dry-run
      ftstudy serve /models/tiny --adapter runs/x/lora --engine vllm   # CPU: after `ftstudy setup vllm`
    """
    import signal

    from ftstudy.core import runner
    from ftstudy.eval import serve

    engine = serve.pick_engine(engine)
    if dry_run:
        argv = serve.launch_argv(model, adapter, engine=engine, port=port or serve.free_port(host), host=host,
                                 max_model_len=max_model_len)
        click.echo(runner.show(argv))
        return
    server = serve.Server(model, adapter, engine=engine, host=host, port=port, log=log_path,
                          max_model_len=max_model_len)

    def stop(_signum, _frame):
        raise KeyboardInterrupt

    # SIGTERM (a supervisor) stops the server like Ctrl-C; SIGINT is set too because a shell starts background
    # jobs with it ignored, and Python then never raises KeyboardInterrupt.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    click.echo(f"starting {engine} for {model} (log: {server.log}) ...", err=True)
    try:
        with server as url:
            click.echo(url)
            click.echo(f"model name for requests: {server.model_name}\nCtrl-C to stop.", err=True)
            code = server.wait()
            raise serve.ServeError(f"the server stopped by itself (exit {code}). {server.log_tail()}")
    except KeyboardInterrupt:
        click.echo("stopped.", err=True)
