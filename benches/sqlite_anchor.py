#!/usr/bin/env python3
"""Anchor for the provisioning benchmark: a bare SQLite file per tenant with the same tables.

For each of N tenants: open a new file with Python's sqlite3 (default journal mode DELETE,
synchronous FULL), run the tenant schema (migrations/tenant/V1__domain.sql) in one transaction,
commit, close. Prints one duration in seconds per line (the Rust bench reads them).

No registry, no lock, no atomic publish, no migration history: the floor of "a file with the
tables in it".

    python3 benches/sqlite_anchor.py --sql migrations/tenant/V1__domain.sql --n 1000 --dir /tmp/x
"""

import argparse
import os
import sqlite3
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sql", required=True)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--dir", required=True)
    args = ap.parse_args()

    with open(args.sql, encoding="utf-8") as f:
        schema = f.read()
    script = "BEGIN;\n" + schema + "\nCOMMIT;\n"
    os.makedirs(args.dir, exist_ok=True)
    out = []
    for i in range(args.n):
        path = os.path.join(args.dir, f"t{i:06}.db")
        t0 = time.perf_counter()
        con = sqlite3.connect(path)
        con.executescript(script)
        con.close()
        out.append(time.perf_counter() - t0)
    print("\n".join(f"{t:.9f}" for t in out))


if __name__ == "__main__":
    main()
