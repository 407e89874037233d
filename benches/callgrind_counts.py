"""Instructions per request from a callgrind dump (shared by the *_instructions.sh scripts).

`counts(path, n)` reads the dump with `callgrind_annotate` and returns the program's total and
each function's exclusive instructions, both divided by `n` (the requests the dump covers).
"""
import re
import subprocess


def counts(path, n):
    out = subprocess.run(["callgrind_annotate", "--auto=no", "--threshold=100", path],
                         capture_output=True, text=True, check=True).stdout
    total, per_fn = 0, {}
    for line in out.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+\([^)]*\)\s+(.*)$", line)
        if not m:
            continue
        value, name = int(m.group(1).replace(",", "")), m.group(2)
        if name.startswith("PROGRAM TOTALS"):
            total = value
        else:
            name = re.sub(r"\s*\[[^\]]*\]$", "", name).split(":", 1)[-1]
            per_fn[name] = per_fn.get(name, 0) + value
    return total / n, {k: v / n for k, v in per_fn.items()}
