#!/usr/bin/env python3
"""Drive `servesim interactive` through a pseudo-terminal, as a user would.

    python3 scripts/check_interactive.py [SERVESIM_BINARY]

Types "70b" into the model filter, keeps the default hardware, moves to TP 4 and takes
the default batch; then expects the estimate and the memory plan of that deployment.
Each key is sent only once the prompt it answers is on the screen. Standard library
only; exits non-zero with the screen's tail on failure.
"""

from __future__ import annotations

import os
import pty
import re
import select
import sys
import time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/debug/servesim"
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def main() -> None:
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(BIN, [BIN, "interactive"])
    screen = b""

    def read_until(text: bytes, timeout: float = 60.0) -> None:
        nonlocal screen
        end = time.time() + timeout
        while text not in ANSI.sub(b"", screen):
            if time.time() > end:
                tail = ANSI.sub(b"", screen)[-1500:].decode("utf-8", "replace")
                sys.exit(f"timed out waiting for {text!r}; screen ends:\n{tail}")
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    screen += os.read(fd, 65536)
                except OSError:
                    break

    read_until(b"Model")
    os.write(fd, b"70b")
    read_until(b"Llama-2-70b-hf")
    os.write(fd, b"\r")
    read_until(b"Hardware")
    os.write(fd, b"\r")
    read_until(b"Tensor parallel size")
    os.write(fd, b"\x1b[B\x1b[B\r")  # 1 -> 2 -> 4
    for prompt in (b"Requests in the batch", b"Prompt tokens", b"Output tokens"):
        read_until(prompt)
        os.write(fd, b"\r")
    read_until(b"$ servesim memory", timeout=120)
    read_until(b"fits", timeout=120)
    _, status = os.waitpid(pid, 0)
    text = ANSI.sub(b"", screen).decode("utf-8", "replace")
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"servesim interactive exited {status}:\n{text[-1500:]}")
    want = "--model meta-llama/Llama-2-70b-hf --hardware H100-SXM5-80GB --tensor-parallel-size 4"
    if f"$ servesim estimate {want}" not in text or "TTFT" not in text:
        sys.exit(f"no estimate of the chosen deployment:\n{text[-1500:]}")
    print("servesim interactive: the prompts answered, estimate and memory plan printed")


if __name__ == "__main__":
    main()
