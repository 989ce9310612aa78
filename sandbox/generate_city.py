"""Generate a sample city's road nodes, in the columns of the real nodes file:

    python -m sandbox.generate_city --out config/samples/sample_city_nodes.csv [--nodes 2000 --seed 3]

Nodes lie along a jittered street grid about 12 x 9 km around a made-up centre, so random pairs
are mostly more than 500 m apart, as in a real city. The project ships the default output as the
trip-time pipeline's default nodes file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

CENTRE = (47.2, 39.7)  # degrees; one degree of latitude is ~111 km


def generate(out: Path, nodes: int = 2_000, seed: int = 3) -> Path:
    import numpy as np
    import pandas as pd

    from steps.core.files import atomic_path

    rng = np.random.default_rng(seed)
    streets_ns, streets_ew = rng.integers(0, 60, nodes), rng.integers(0, 45, nodes)
    on_ns = rng.random(nodes) < 0.5
    lat = CENTRE[0] - 0.04 + np.where(on_ns, rng.random(nodes) * 0.08, streets_ew * 0.08 / 45)
    lon = CENTRE[1] - 0.08 + np.where(on_ns, streets_ns * 0.16 / 60, rng.random(nodes) * 0.16)
    lat, lon = np.round(lat + rng.normal(0, 2e-4, nodes), 6), np.round(lon + rng.normal(0, 2e-4, nodes), 6)
    frame = pd.DataFrame({
        "node_id": 10**9 + rng.permutation(nodes) * 1_000 + rng.integers(0, 1_000, nodes),
        "node_coordinate": [f"({a}, {b})" for a, b in zip(lat, lon, strict=True)],
        "lat": lat, "lon": lon,
    })  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--nodes", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    print(generate(args.out, args.nodes, args.seed))


if __name__ == "__main__":
    main()
