#!/usr/bin/env python3
"""`dp-train embed` against sentence-transformers on real sentences (a stage of scripts/test.sh).

    python3 scripts/tests/check_embed.py --bin .build/release/dp-train \
        --model artifacts/models/all-MiniLM-L6-v2 --data artifacts/data/vader-movies.tsv

Embeds the first --count texts of the data set with mean pooling and normalisation, both with
dp-train and with sentence-transformers (CPU, float32), and fails unless every pair of
embeddings has a cosine of at least 0.9999.
"""
import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from sentence_transformers import SentenceTransformer

MIN_COSINE = 0.9999


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()

    with args.data.open(encoding="utf-8", newline="") as f:
        rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        texts = [row[args.text_column] for _, row in zip(range(args.count), rows)]
    with tempfile.TemporaryDirectory() as work:
        source, output = Path(work) / "texts.txt", Path(work) / "embeddings.jsonl"
        source.write_text("\n".join(texts) + "\n", encoding="utf-8")
        subprocess.run([args.bin, "embed", "--model", args.model, "--input", str(source), "--normalize",
                        "--output", str(output)], check=True)
        ours = np.array([json.loads(line)["embedding"] for line in output.read_text().splitlines()])
    reference = SentenceTransformer(args.model, device="cpu").encode(texts, normalize_embeddings=True, batch_size=64)
    if ours.shape != reference.shape:
        sys.exit(f"check_embed: FAILED: dp-train wrote {ours.shape} embeddings, sentence-transformers {reference.shape}")
    cosines = np.sum(ours * reference, axis=1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(reference, axis=1))
    worst = int(np.argmin(cosines))
    print(f"check_embed: {len(texts)} sentences, cosine min {cosines.min():.7f}, mean {cosines.mean():.7f}")
    if not np.all(cosines >= MIN_COSINE):
        sys.exit(f"check_embed: FAILED: {int(np.sum(cosines < MIN_COSINE))} embeddings below cosine {MIN_COSINE}; "
                 f"worst {cosines[worst]:.7f} for {texts[worst]!r}")


if __name__ == "__main__":
    main()
