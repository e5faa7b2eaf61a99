"""The user's path end to end: ``vtr extract`` a folder, ``vtr index build`` it, ``vtr search`` it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vtr.cli import main
from vtr.config import load_profile
from vtr.extract.api import make_encoder
from vtr.extract.store import load_extraction
from vtr.index import VideoIndex

from .conftest import SMALL_VIDEOS, cli_args


def test_extract_index_search(videos_dir: Path, tmp_path: Path, capsys) -> None:
    extract, index = tmp_path / "extract", tmp_path / "index"
    assert main(["extract", str(videos_dir), "--out", str(extract), *cli_args(tmp_path)]) == 0
    assert main(["index", "build", str(extract), "--out", str(index)]) == 0
    capsys.readouterr()
    query = "a bicycle race"
    profile = ["--set", 'model.pretrained=""', "--set", f"data_dir={tmp_path / 'data'}"]
    assert main(["search", query, "--index", str(index), "-k", "2", *profile]) == 0
    printed = capsys.readouterr().out
    assert all(name in printed for name in SMALL_VIDEOS)

    # The scores are cosines of the query with the stored rows under the *same* encoder weights:
    # recompute them from the extraction with the extractor's encoder.
    cfg = load_profile("sample", {"model.pretrained": "", "data_dir": str(tmp_path / "data")})
    encoder = make_encoder(cfg)
    table, vectors, _ = load_extraction(extract)
    text = encoder.encode_text([query])[0]
    best = {}
    for row, vector in zip(table.itertuples(), vectors, strict=True):
        best[row.video_id] = max(best.get(row.video_id, -1.0), float(vector @ text))
    found = VideoIndex.load(index, encoder=encoder).search(query, k=2)
    for hit in found.itertuples():
        np.testing.assert_allclose(hit.score, best[hit.video_id], rtol=1e-4, atol=1e-5)
    # ... and the command printed the same scores (rank, score, video id, ...).
    printed_scores = {line.split()[2]: float(line.split()[1]) for line in printed.strip().splitlines()}
    for video_id, score in printed_scores.items():
        assert abs(score - best[video_id]) < 1e-3
