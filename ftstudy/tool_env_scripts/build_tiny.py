"""Build the tiny Qwen2-shaped base model: a byte-level BPE tokenizer trained on local text, weights from a seeded
initialisation, then briefly pretrained (next-token prediction) on the bundled general corpus
(pretrain_corpus.txt, written by make_corpus.py), so that fine-tuning adapts a model that already models
language, as with a real base.

Runs inside the train environment's Python (torch, transformers, tokenizers); it never imports ftstudy, so
the core package stays free of those imports. `ftstudy.train.tiny.build` is the way to call it: it adds the
manifest, the caching and the atomic rename. Everything here is a pure function of the arguments and the
corpus file, so the same seed gives byte-identical files.

Example:
    $ python build_tiny.py --out /tmp/tiny --layers 4 --hidden 128 --vocab 1000 --seed 0
"""
from __future__ import annotations

import argparse
import math
import json
import os
import sys
from pathlib import Path

# Before the heavy imports: no hub look-ups; a single-threaded BPE trainer (nothing may depend on scheduling).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, trainers  # noqa: E402
from transformers import (  # noqa: E402
    GenerationConfig, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM, Qwen2Tokenizer,
)

CORPUS = Path(__file__).with_name("tiny_corpus.txt")
PRETRAIN = Path(__file__).with_name("pretrain_corpus.txt")
# Pretraining: fixed steps, batch and thread count, deterministic algorithms: the same bytes on every machine
# with the same torch build. THREADS is fixed (not the core count) because a matmul's reduction order, and so
# its last bits, depends on how many threads split it (ftstudy/train/tiny.py says why it is one).
THREADS, SEQ, BATCH, LR = 1, 128, 16, 3e-3
PAD, IM_START, EOS = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
# Special: stripped by decode(skip_special_tokens=True). The tool tags are deliberately NOT special (as in
# Qwen2.5): a server decoding with skip_special_tokens must still hand `<tool_call>` text to the scorer.
SPECIAL = [PAD, IM_START, EOS]
TOOL_TAGS = ["<tool_call>", "</tool_call>", "<tools>", "</tools>", "<tool_response>", "</tool_response>"]
HEADS, KV_HEADS, MAX_POSITIONS = 4, 2, 4096

# ChatML with Qwen-style tool markup, written for ftstudy. Every piece of output is an explicit string
# literal and every tag trims whitespace, so the result does not depend on the renderer's trim_blocks /
# lstrip_blocks settings (transformers, vLLM and Axolotl all render it the same).
CHAT_TEMPLATE = r"""{#- ftstudy tiny model: ChatML turns; tools listed in <tools>, calls emitted in <tool_call> blocks. -#}
{%- macro text(content) -%}
{%- if content is string -%}{{- content -}}
{%- elif content is iterable -%}{%- for part in content -%}{%- if part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}{%- endfor -%}
{%- endif -%}
{%- endmacro -%}
{%- set ns = namespace(system='', first=0) -%}
{%- if messages and messages[0]['role'] == 'system' -%}
{%- set ns.system = text(messages[0]['content']) -%}
{%- set ns.first = 1 -%}
{%- endif -%}
{%- if tools -%}
{{- '<|im_start|>system\n' -}}
{%- if ns.system -%}{{- ns.system + '\n\n' -}}{%- endif -%}
{{- '# Tools\n\nYou have access to the functions below. Each is described by a JSON schema between the <tools> and </tools> tags:\n<tools>' -}}
{%- for tool in tools -%}{{- '\n' + (tool | tojson) -}}{%- endfor -%}
{{- '\n</tools>\n\nWhen a function would help, call it by writing a JSON object with its name and arguments between <tool_call> and </tool_call>, one block per call:\n<tool_call>\n{"name": "<function name>", "arguments": {"<parameter>": <value>}}\n</tool_call><|im_end|>\n' -}}
{%- elif ns.system -%}
{{- '<|im_start|>system\n' + ns.system + '<|im_end|>\n' -}}
{%- endif -%}
{%- for message in messages[ns.first:] -%}
{%- if message['role'] == 'assistant' -%}
{{- '<|im_start|>assistant\n' + text(message['content']) -}}
{%- if message['tool_calls'] is defined and message['tool_calls'] -%}
{%- for call in message['tool_calls'] -%}
{%- set fn = call['function'] if call['function'] is defined else call -%}
{%- if message['content'] or not loop.first -%}{{- '\n' -}}{%- endif -%}
{{- '<tool_call>\n{"name": ' + (fn['name'] | tojson) + ', "arguments": ' -}}
{%- if fn['arguments'] is string -%}{{- fn['arguments'] -}}{%- else -%}{{- fn['arguments'] | tojson -}}{%- endif -%}
{{- '}\n</tool_call>' -}}
{%- endfor -%}
{%- endif -%}
{{- '<|im_end|>\n' -}}
{%- elif message['role'] == 'tool' -%}
{{- '<|im_start|>user\n<tool_response>\n' + text(message['content']) + '\n</tool_response><|im_end|>\n' -}}
{%- else -%}
{{- '<|im_start|>' + message['role'] + '\n' + text(message['content']) + '<|im_end|>\n' -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}"""


def train_tokenizer(vocab: int, corpus: Path) -> Tokenizer:
    """Byte-level BPE (every byte has a token, so no text is ever unknown) trained on `corpus`.

    transformers 5 loads the tokenizer of every `qwen2` model through Qwen2Tokenizer, which rebuilds the
    normalizer and pre-tokenizer itself whatever tokenizer.json says. So the merges are learned with that very
    pipeline, taken from the installed transformers: raw `tokenizers`, AutoTokenizer and servers then agree."""
    pipeline = Qwen2Tokenizer().backend_tokenizer
    tok = Tokenizer(models.BPE())
    tok.normalizer = pipeline.normalizer
    tok.pre_tokenizer = pipeline.pre_tokenizer
    tok.decoder = pipeline.decoder
    added = SPECIAL + TOOL_TAGS
    # The markup tokens get their own ids below, so merges are not spent learning to spell them.
    lines = corpus.read_text(encoding="utf-8").splitlines(keepends=True)
    for tag in added:
        lines = [line.replace(tag, "\n") for line in lines]
    trainer = trainers.BpeTrainer(vocab_size=vocab - len(added), min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator(lines, trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TOOL_TAGS])
    return tok


def init_weights(model: torch.nn.Module, seed: int) -> None:
    """Fill every parameter from one seeded generator in a fixed order (not transformers' own init, whose
    details change between releases): norms 1, biases 0, matrices N(0, 0.02)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.fill_(1.0)
            elif name.endswith(".bias"):
                param.zero_()
            else:
                param.copy_(torch.randn(param.shape, generator=gen, dtype=torch.float32) * 0.02)


def documents(corpus: Path, pretrain: Path) -> list[str]:
    """The pretraining documents: the tokenizer corpus line by line, then the general corpus's paragraphs."""
    lines = [l for l in corpus.read_text(encoding="utf-8").splitlines() if l.strip()]
    return lines + [p for p in pretrain.read_text(encoding="utf-8").split("\n\n") if p.strip()]


def pretrain(model: torch.nn.Module, tok: Tokenizer, docs: list[str], steps: int, seed: int,
             log=print) -> list[float]:
    """Next-token prediction on random windows of the corpus (documents joined by the end-of-text token), AdamW
    with a short warm-up and a cosine decay. Returns the loss every 50 steps. Deterministic: one seeded
    generator picks the windows, torch runs deterministic algorithms on a fixed number of threads."""
    if steps <= 0:
        return []
    torch.manual_seed(seed)
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    pad = tok.token_to_id(PAD)
    stream: list[int] = []
    for enc in tok.encode_batch(docs):
        stream += enc.ids + [pad]
    data = torch.tensor(stream, dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.95), weight_decay=0.1)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * (
        0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))))
    model.train()
    losses = []
    for step in range(steps):
        starts = torch.randint(0, len(data) - SEQ - 1, (BATCH,), generator=gen)
        batch = torch.stack([data[s:s + SEQ] for s in starts.tolist()])
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        if step % 50 == 0 or step == steps - 1:
            losses.append(round(loss.item(), 4))
            log(f"pretraining step {step + 1}/{steps}: loss {loss.item():.3f}")
    model.eval()
    return losses


def build(out: Path, layers: int, hidden: int, vocab: int, seed: int, corpus: Path = CORPUS,
          steps: int = 0, pretrain_corpus: Path = PRETRAIN) -> None:
    """Write config, weights, generation config and tokenizer files into `out` (which must exist)."""
    if hidden % (2 * HEADS):
        sys.exit(f"--hidden must be a multiple of {2 * HEADS} (4 heads with an even head size), got {hidden}")
    tok = train_tokenizer(vocab, corpus)
    ids = {t: tok.token_to_id(t) for t in SPECIAL}
    config = Qwen2Config(
        vocab_size=tok.get_vocab_size(with_added_tokens=True), hidden_size=hidden, intermediate_size=2 * hidden,
        num_hidden_layers=layers, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
        max_position_embeddings=MAX_POSITIONS, max_window_layers=layers, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, dtype="float32",
        bos_token_id=None, eos_token_id=ids[EOS], pad_token_id=ids[PAD],
    )
    model = Qwen2ForCausalLM(config)
    init_weights(model, seed)
    losses = pretrain(model, tok, documents(corpus, pretrain_corpus), steps, seed,
                      log=lambda m: print(m, file=sys.stderr, flush=True))
    model.generation_config = GenerationConfig(eos_token_id=[ids[EOS], ids[PAD]],
                                               pad_token_id=ids[PAD], do_sample=False)
    model.save_pretrained(out)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD, bos_token=None,
                                   unk_token=None, model_max_length=MAX_POSITIONS, chat_template=CHAT_TEMPLATE,
                                   clean_up_tokenization_spaces=False, padding_side="right")
    # The template goes inline in tokenizer_config.json (not chat_template.jinja): every loader reads that.
    fast.save_pretrained(out, save_jinja_files=False)
    # Name the class transformers picks for qwen2 anyway (v5 forces it; v4 maps it to its fast tokenizer,
    # which reads tokenizer.json as written). The generic name transformers writes would mislead.
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["tokenizer_class"] = "Qwen2Tokenizer"
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    if steps:
        (out / "pretraining.json").write_text(json.dumps({"steps": steps, "seq": SEQ, "batch": BATCH, "lr": LR,
                                                         "threads": THREADS, "loss": losses}, indent=1) + "\n")
    for path in out.iterdir():
        path.chmod(0o644)  # safetensors writes 0600; a server running as another user must read the weights


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--vocab", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--pretrain-steps", type=int, default=0, help="0: random weights (no pretraining)")
    ap.add_argument("--pretrain-corpus", type=Path, default=PRETRAIN)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    build(args.out, args.layers, args.hidden, args.vocab, args.seed, args.corpus, args.pretrain_steps,
          args.pretrain_corpus)


if __name__ == "__main__":
    main()
