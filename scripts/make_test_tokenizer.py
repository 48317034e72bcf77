#!/usr/bin/env python3
"""Write tests/fixtures/tokenizer/llama3-style-bpe2k/: a small byte-level BPE tokenizer
built like Llama 3's, for tests only (it is no real model's vocabulary).

Usage (needs the PyPI package `tokenizers`, nothing else):

    python3 -m venv /tmp/venv-tok && /tmp/venv-tok/bin/pip install tokenizers
    /tmp/venv-tok/bin/python scripts/make_test_tokenizer.py [--rev REV] [--out DIR]

What it makes, as in Llama 3's tokenizer.json:
- pre-tokenizer: Split on the Llama 3 regex (isolated), then ByteLevel without prefix
  space and without its own regex; no normalizer;
- model: BPE with ignore_merges, trained on the repository's own text (README.md, then
  docs/*.md sorted by name) read from git revision REV, so that the output does not move
  when those files are edited; `--rev WORKTREE` reads the files on disk instead;
- 2043 BPE tokens (ids 0..2042) and the five special tokens after them (ids 2043..2047),
  2048 ids in all, as Llama 3 puts its specials at 128000 and up;
- post-processor: ByteLevel then TemplateProcessing that puts <|begin_of_text|> in front
  of a single sequence (and of each sequence of a pair); decoder: ByteLevel.

Running it twice on the same revision gives byte-identical files: training is sequential
(TOKENIZERS_PARALLELISM=false), the BPE trainer breaks ties by pair ids, and every JSON
file is written with sorted keys where order does not carry meaning.
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ["TOKENIZERS_PARALLELISM"] = "false"

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# The revision whose README.md and docs/*.md the shipped fixture was trained on.
DEFAULT_REV = "670a8bb865f49749374d3350275b04af36b0393a"
OUT = REPO / "tests/fixtures/tokenizer/llama3-style-bpe2k"
VOCAB_SIZE = 2048
SPECIALS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
]
REPEAT_WORDS = [" tok", " the", " token", " a"]
# Llama 3's pre-tokenizer regex, as in its tokenizer.json; the look-ahead needs
# fancy-regex (or onig), which the tokenizers crate's `fancy-regex` feature gives.
LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# Llama 3.1 Instruct's template cut down to headers, trimmed content and <|eot_id|>;
# plain Jinja that Python's jinja2 and Rust's minijinja both accept.
CHAT_TEMPLATE = (
    "{{- bos_token }}\n"
    "{%- for message in messages %}\n"
    "    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' "
    "+ message['content'] | trim + '<|eot_id|>' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n"
    "{%- endif %}\n"
)


def corpus(rev):
    """README.md then docs/*.md sorted by name, from git revision `rev` (or the work tree)."""
    if rev == "WORKTREE":
        paths = ["README.md"] + sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md"))
        return paths, [(REPO / p).read_text(encoding="utf-8") for p in paths]
    git = ["git", "-C", str(REPO)]
    names = subprocess.run(git + ["ls-tree", "--name-only", rev, "docs/"], check=True, capture_output=True, text=True).stdout.split()
    paths = ["README.md"] + sorted(n for n in names if n.endswith(".md"))
    texts = [subprocess.run(git + ["show", f"{rev}:{p}"], check=True, capture_output=True).stdout.decode("utf-8") for p in paths]
    return paths, texts


def build(texts):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE - len(SPECIALS),
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    # Whole files, in order, so that blank lines ("\n\n") are seen as in real text.
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    n_bpe = tok.get_vocab_size(with_added_tokens=False)
    if n_bpe != VOCAB_SIZE - len(SPECIALS):
        sys.exit(f"the corpus gave {n_bpe} BPE tokens, wanted {VOCAB_SIZE - len(SPECIALS)}")
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])
    bos = tok.token_to_id(SPECIALS[0])
    assert bos == n_bpe, bos
    tok.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single="<|begin_of_text|> $A:0",
                pair="<|begin_of_text|>:0 $A:0 <|begin_of_text|>:1 $B:1",
                special_tokens=[("<|begin_of_text|>", bos)],
            ),
        ]
    )
    return tok


def dump(path, obj, compact=False):
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":")) if compact else json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True)
    path.write_text(text + "\n", encoding="utf-8")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rev", default=DEFAULT_REV, help="git revision to read README.md and docs/*.md from, or WORKTREE (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=OUT, help="output folder (default: %(default)s)")
    args = ap.parse_args()

    paths, texts = corpus(args.rev)
    tok = build(texts)
    args.out.mkdir(parents=True, exist_ok=True)
    # Tokenizer.to_str keeps the field order the loaders expect; re-dump it compact.
    dump(args.out / "tokenizer.json", json.loads(tok.to_str()), compact=True)

    added = {
        str(tok.token_to_id(s)): {"content": s, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": True}
        for s in SPECIALS
    }
    dump(
        args.out / "tokenizer_config.json",
        {
            "added_tokens_decoder": added,
            "bos_token": "<|begin_of_text|>",
            "chat_template": CHAT_TEMPLATE,
            "clean_up_tokenization_spaces": False,
            "eos_token": "<|eot_id|>",
            "model_input_names": ["input_ids", "attention_mask"],
            "model_max_length": 131072,
            "tokenizer_class": "PreTrainedTokenizerFast",
        },
    )
    dump(args.out / "special_tokens_map.json", {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"})

    import tokenizers

    # Words whose k-fold repetition is exactly k tokens: handy for tests that need a
    # prompt or an output of a known length (servesim's stand-in output is " tok" a token).
    repeat = [w for w in REPEAT_WORDS if all(len(tok.encode(w * k, add_special_tokens=False).ids) == k for k in range(1, 301))]
    if repeat != REPEAT_WORDS:
        sys.exit(f"only {repeat} of {REPEAT_WORDS} repeat into one token each")

    source = "the work tree" if args.rev == "WORKTREE" else f"git revision `{args.rev}`"
    (args.out / "README.md").write_text(
        f"""# llama3-style-bpe2k: a test tokenizer

A small byte-level BPE tokenizer built the way Llama 3's is, **for tests only**: it is not
any real model's vocabulary, and token counts made with it match no real model.

- 2048 ids: 2043 BPE tokens (ids 0..2042), then the special tokens
  {", ".join(f"`{s}` ({tok.token_to_id(s)})" for s in SPECIALS)},
  as Llama 3 puts its specials after its BPE vocabulary.
- Pre-tokenizer: Split on Llama 3's regex (it needs look-ahead: fancy-regex or onig),
  then ByteLevel with add_prefix_space false; no normalizer; ByteLevel decoder.
- {", ".join(f"`{w!r}` ({tok.token_to_id(w.replace(' ', 'Ġ'))})" for w in REPEAT_WORDS)} are single tokens
  whose k-fold repetition encodes to exactly k tokens (k = 1..300, without special tokens),
  for tests that need texts of known token length.
- Post-processor: `<|begin_of_text|>` in front of each sequence when special tokens are
  added, as Llama 3's tokenizer does.
- `tokenizer_config.json`: PreTrainedTokenizerFast, bos `<|begin_of_text|>`, eos
  `<|eot_id|>`, model_max_length 131072, and a chat template cut down from Llama 3.1
  Instruct's (bos, then per message `<|start_header_id|>ROLE<|end_header_id|>\\n\\n`,
  the trimmed content and `<|eot_id|>`, then the assistant header when a generation
  prompt is asked for) that both Python's jinja2 and Rust's minijinja accept.

Trained with tokenizers {tokenizers.__version__} on this repository's
{", ".join(paths)}
from {source}, by:

    python3 -m venv /tmp/venv-tok && /tmp/venv-tok/bin/pip install tokenizers=={tokenizers.__version__}
    /tmp/venv-tok/bin/python scripts/make_test_tokenizer.py{"" if args.rev == DEFAULT_REV else " --rev " + args.rev}

The script is deterministic: the same revision gives byte-identical files.
""",
        encoding="utf-8",
    )
    print(f"wrote {args.out} ({tok.get_vocab_size()} ids, trained on {len(paths)} files from {source})")


if __name__ == "__main__":
    main()
