#!/usr/bin/env python3
"""Write examples/measured/llmservingsim-vllm-bench/rtxpro6000_llama8b_vllm019.csv from an
LLMServingSim bench run.

Usage: python3 scripts/make_validate_sample.py ../shared/validation/llmservingsim-vllm-bench/RTXPRO6000_Llama-3.1-8B

Times become seconds after the first request was queued (vLLM's monotonic clock, so the
`timing` column says `engine`), one row per request in file order; the token counts are
kept as they are. The folder is named after the set so that `validate` labels the
sample IN-SAMPLE for the parameters fitted on that set.
"""
import json
import sys
from pathlib import Path

src = Path(sys.argv[1])
rows = [json.loads(l) for l in (src / "requests.jsonl").read_text().splitlines() if l.strip()]
t0 = min(r["queued_ts"] for r in rows)
out = Path(__file__).resolve().parent.parent / "examples/measured/llmservingsim-vllm-bench/rtxpro6000_llama8b_vllm019.csv"
out.parent.mkdir(parents=True, exist_ok=True)
with out.open("w") as f:
    f.write("arrival_s,first_token_s,finish_s,input_tokens,output_tokens,timing\n")
    for r in rows:
        f.write(
            f"{r['queued_ts'] - t0:.6f},{r['first_token_ts'] - t0:.6f},"
            f"{r['last_token_ts'] - t0:.6f},{r['input_toks']},{r['output_toks']},engine\n"
        )
print(f"wrote {out} ({len(rows)} requests)")
