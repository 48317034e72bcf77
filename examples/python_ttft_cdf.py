"""A few configurations from Python, and their TTFT CDFs with matplotlib.

    pip install . matplotlib
    python examples/python_ttft_cdf.py            # writes output/python_ttft_cdf.png

Each point is one `servesim.simulate` call (the same flags as `servesim simulate`);
results come back as DataFrames, nothing is written but the chart.
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import servesim  # noqa: E402

TRACE = "traces/azure_conv_5min.csv"
POINTS = [
    dict(model="llama-3.1-8b", hardware="h100", rate_scale=1.0),
    dict(model="llama-3.1-8b", hardware="h100", rate_scale=4.0),
    dict(model="llama-3.1-8b", hardware="a100", rate_scale=4.0),
    dict(model="llama-3.1-70b", hardware="h100", tensor_parallel_size=4, rate_scale=4.0),
]

fig, ax = plt.subplots(figsize=(7, 4))
for p in POINTS:
    r = servesim.simulate(TRACE, **p)
    ttft_ms = np.sort(r.requests.query("status == 'finished'")["ttft_s"].to_numpy() * 1e3)
    label = f"{p['model']} on {p['hardware']}" + (f" TP{p['tensor_parallel_size']}" if "tensor_parallel_size" in p else "")
    label += f", {p['rate_scale']:g}x load (p99 {r.summary['ttft_s']['p99'] * 1e3:.0f} ms)"
    ax.plot(ttft_ms, np.arange(1, len(ttft_ms) + 1) / len(ttft_ms), label=label)
    print(r)
ax.set_xscale("log")
ax.set_xlabel("time to first token, ms")
ax.set_ylabel("fraction of requests")
ax.legend(fontsize=8)
ax.grid(True, which="both", alpha=0.3)
os.makedirs("output", exist_ok=True)
fig.tight_layout()
fig.savefig("output/python_ttft_cdf.png", dpi=120)
print("wrote output/python_ttft_cdf.png")
