#!/usr/bin/env python3
"""A small open-loop load generator on the `openai` Python SDK, run by
scripts/serve_clients.py inside its own venv (packages: openai, transformers).

Sends `--rate` requests per second (evenly spaced, or Poisson with `--arrivals poisson`)
for `--duration` seconds, each a streaming chat (or completions) request whose prompt is
exactly `--prompt-tokens` tokens of the tokenizer in `--tokenizer` (words that are single
tokens, so re-encoding cannot merge them) and `max_tokens = --output-tokens` with
`ignore_eos`. For each request it records the send time, first-token and last-token
times (seconds after the first send, client clock), the server's usage and its own
counts (prompt through the tokenizer and chat template, output text re-encoded), and
writes records.jsonl (one line per request) and summary.json into `--out`.

`serve_clients_openai.py recount --tokenizer DIR IN.jsonl OUT.jsonl` counts tokens the way
vLLM does for the payloads other clients sent: each input line is {"endpoint": "chat" or
"completions", "messages" or "prompt", "output"}; each output line {"prompt_tokens",
"output_tokens"}: chat through the tokenizer's chat template with the generation prompt
(text parts of a content list joined by newlines, as vLLM does for string-content
templates), completions with the special tokens (BOS), output text without them.
"""
import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path


def make_prompt(tok, n, rng):
    """n tokens: a word, then n - 1 space-led words, each a single token of the vocabulary, so
    that re-encoding gives n (and a chat template's `trim` changes nothing)."""
    vocab = tok.get_vocab()
    words = sorted(t[1:] for t in vocab if t.startswith("\u0120") and t[1:].isascii() and t[1:].isalpha() and len(t) > 2)
    firsts = sorted(t for t in vocab if t.isascii() and t.isalpha() and len(t) > 1)
    text = rng.choice(firsts) + "".join(" " + rng.choice(words) for _ in range(n - 1))
    ids = tok(text, add_special_tokens=False)["input_ids"]
    if len(ids) != n:
        sys.exit(f"prompt of {n} words re-encodes to {len(ids)} tokens")
    return text


async def one(client, args, idx, send_at, t0, prompt, tok, rec):
    await asyncio.sleep(max(0.0, send_at - (time.perf_counter() - t0)))
    r = {"idx": idx, "arrival_s": time.perf_counter() - t0, "first_token_s": None, "finish_s": None,
         "usage_prompt_tokens": None, "usage_completion_tokens": None, "chunks": 0, "text": "", "error": ""}
    extra = {"ignore_eos": True}
    try:
        if args.endpoint == "chat":
            stream = await client.chat.completions.create(
                model=args.model, messages=[{"role": "user", "content": prompt}], max_tokens=args.output_tokens,
                stream=True, stream_options={"include_usage": True}, extra_body=extra)
        else:
            stream = await client.completions.create(
                model=args.model, prompt=prompt, max_tokens=args.output_tokens,
                stream=True, stream_options={"include_usage": True}, extra_body=extra)
        async for chunk in stream:
            now = time.perf_counter() - t0
            if chunk.choices:
                c = chunk.choices[0]
                piece = (c.delta.content if args.endpoint == "chat" else c.text) or ""
                if piece:
                    r["first_token_s"] = r["first_token_s"] or now
                    r["finish_s"] = now
                    r["chunks"] += 1
                    r["text"] += piece
            if getattr(chunk, "usage", None):
                r["usage_prompt_tokens"] = chunk.usage.prompt_tokens
                r["usage_completion_tokens"] = chunk.usage.completion_tokens
    except Exception as e:  # noqa: BLE001 - every failure is a counted failed request
        r["error"] = f"{type(e).__name__}: {e}"[:300]
    if not r["error"] and r["first_token_s"] is None:
        r["error"] = "no content"
    # Counted with the tokenizer after the run: tokenizing here would hold up the
    # event loop, and with it the timestamps of the other streams.
    r["prompt"] = prompt
    rec.append(r)


def count_tokens(tok, endpoint, r):
    """The client's own prompt and output token counts of record `r`."""
    prompt = r.pop("prompt")
    if endpoint == "chat":
        r["client_prompt_tokens"] = len(tok.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"])
    else:
        r["client_prompt_tokens"] = len(tok(prompt)["input_ids"])
    r["client_output_tokens"] = len(tok(r["text"], add_special_tokens=False)["input_ids"])


def stats(xs):
    xs = [x for x in xs if x is not None]
    return {"median": statistics.median(xs), "mean": statistics.fmean(xs)} if xs else {"median": None, "mean": None}


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--rate", type=float, default=5.0)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--prompt-tokens", type=int, default=256)
    ap.add_argument("--output-tokens", type=int, default=128)
    ap.add_argument("--endpoint", choices=["chat", "completions"], default="chat")
    ap.add_argument("--arrivals", choices=["constant", "poisson"], default="constant")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    from openai import AsyncOpenAI
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    rng = random.Random(args.seed)
    n = max(1, round(args.rate * args.duration))
    sends, t = [], 0.0
    for i in range(n):
        sends.append(t)
        t += rng.expovariate(args.rate) if args.arrivals == "poisson" else 1.0 / args.rate
    prompts = [make_prompt(tok, args.prompt_tokens, rng) for _ in range(n)]
    # The SDK's default pool allows 1000 connections: enough for these loads.
    client = AsyncOpenAI(base_url=args.base_url, api_key="unused", max_retries=0, timeout=600)
    rec = []
    t0 = time.perf_counter()
    await asyncio.gather(*(one(client, args, i, s, t0, p, tok, rec) for i, (s, p) in enumerate(zip(sends, prompts))))
    wall = time.perf_counter() - t0
    for r in rec:
        count_tokens(tok, args.endpoint, r)
    rec.sort(key=lambda r: r["idx"])

    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "records.jsonl").open("w") as f:
        for r in rec:
            ok = not r["error"]
            f.write(json.dumps({
                "arrival_s": r["arrival_s"], "first_token_s": r["first_token_s"], "finish_s": r["finish_s"],
                "status": "finished" if ok else "failed", "error": r["error"],
                "input_tokens": r["usage_prompt_tokens"], "output_tokens": r["usage_completion_tokens"],
                "client_input_tokens": r["client_prompt_tokens"], "client_output_tokens": r["client_output_tokens"],
                "ref_input_tokens": r["client_prompt_tokens"], "ref_output_tokens": r["client_output_tokens"],
                "chunks": r["chunks"]}) + "\n")
    good = [r for r in rec if not r["error"]]
    itl = [(r["finish_s"] - r["first_token_s"]) / (r["chunks"] - 1) for r in good if r["chunks"] > 1]
    summary = {
        "client": "openai",
        "requests": len(rec), "succeeded": len(good), "failed": len(rec) - len(good),
        "errors": sorted({r["error"] for r in rec if r["error"]})[:5],
        "wall_s": wall,
        "ttft_ms": {k: v and v * 1e3 for k, v in stats([r["first_token_s"] - r["arrival_s"] for r in good]).items()},
        "itl_ms": {k: v and v * 1e3 for k, v in stats(itl).items()},
        "e2e_ms": {k: v and v * 1e3 for k, v in stats([r["finish_s"] - r["arrival_s"] for r in good]).items()},
        "prompt_tokens": stats([r["client_prompt_tokens"] for r in good]),
        "output_tokens": stats([r["client_output_tokens"] for r in good]),
        "usage_prompt_tokens": stats([r["usage_prompt_tokens"] for r in good]),
        "usage_output_tokens": stats([r["usage_completion_tokens"] for r in good]),
        "prompt_mismatches": sum(r["usage_prompt_tokens"] != r["client_prompt_tokens"] for r in good),
        "output_mismatches": sum(r["usage_completion_tokens"] != r["client_output_tokens"] for r in good),
        "output_chunk_mismatches": sum(r["chunks"] != r["usage_completion_tokens"] for r in good),
        "client_prompt_tokens_total": sum(r["client_prompt_tokens"] for r in good),
        "client_output_tokens_total": sum(r["client_output_tokens"] for r in good),
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))


def chat_messages(messages):
    """Content lists of text parts become one string, as vLLM does for string-content templates."""
    out = []
    for m in messages:
        c = m.get("content")
        if isinstance(c, list):
            c = "\n".join(p.get("text", "") for p in c if isinstance(p, dict) and p.get("type") == "text")
        out.append({**m, "content": c if c is not None else ""})
    return out


def recount(argv):
    ap = argparse.ArgumentParser(prog="serve_clients_openai.py recount")
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("inp", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args(argv)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    with args.inp.open() as fi, args.out.open("w") as fo:
        for line in fi:
            r = json.loads(line)
            if r.get("endpoint") == "chat":
                p = len(tok.apply_chat_template(chat_messages(r["messages"]), tokenize=True, add_generation_prompt=True,
                                                return_dict=True)["input_ids"])
            elif r.get("prompt") is not None:
                p = len(tok(r["prompt"])["input_ids"])
            else:
                p = None
            o = None if r.get("output") is None else len(tok(r["output"], add_special_tokens=False)["input_ids"])
            fo.write(json.dumps({"prompt_tokens": p, "output_tokens": o}) + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["recount"]:
        recount(sys.argv[2:])
    else:
        asyncio.run(main())
