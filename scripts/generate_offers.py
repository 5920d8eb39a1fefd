"""Write the offers example's logged rounds (``examples/offers/data/rounds.parquet``), reproducibly.

    python scripts/generate_offers.py [--rounds 6000] [--seed 7]

The rounds come from ``examples/offers/environment.py``: customers drawn at
random, an offer chosen by the epsilon-greedy logging policy (its propensity
kept), and a purchase drawn from the known purchase probability. The same
seed writes the same rows (the file is compared by content, not bytes).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "offers"


def _environment():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("offers_environment", EXAMPLE / "environment.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=EXAMPLE / "data" / "rounds.parquet")
    args = parser.parse_args(argv)
    rounds = _environment().simulate(args.rounds, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rounds.write_parquet(args.out, compression="zstd", statistics=False)
    print(f"wrote {rounds.height} rounds to {args.out} ({args.out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
