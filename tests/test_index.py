"""vtr.index (faiss search index) and vtr.search_cli (`vtr index build`, `vtr search`).

The extraction folders are written by :func:`write_extraction` below, in the layout ``vtr extract``
writes (embeddings/shard-*.npy, metadata.parquet, extraction.json), from random or encoder vectors.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import vtr.index as vindex
from vtr.cli import main
from vtr.index import (
    IndexMismatchError,
    MissingIndexError,
    SearchIndexError,
    VideoIndex,
    brute_force_search,
    build_index,
    choose_kind,
    read_extraction,
    recall_at_k,
)

FPS = 2.0  # frame i of a fake video is at i / FPS seconds


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def clustered(n: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = unit(rng.standard_normal((clusters, dim)))
    noise = rng.standard_normal((n, dim)) * (0.8 / np.sqrt(dim))
    return unit(centres[rng.integers(0, clusters, n)] + noise)


def fake_rows(
    frames: np.ndarray, first_video: int = 0, key_prefix: str = "k"
) -> tuple[np.ndarray, pd.DataFrame]:
    """(videos, frames, dim) frame vectors -> extraction rows: per video one pooled video row, then its frames."""
    vectors, rows = [], []
    for v, video_frames in enumerate(frames, start=first_video):
        vid = f"video{v:03d}"
        base = {"video_id": vid, "video_path": f"/videos/{vid}.mp4", "content_key": f"{key_prefix}{v:03d}"}
        vectors.append(unit(video_frames.mean(axis=0)))
        rows.append({**base, "kind": "video", "frame_index": -1, "time_s": float("nan")})
        for i, vector in enumerate(video_frames):
            vectors.append(vector)
            rows.append({**base, "kind": "frame", "frame_index": i, "time_s": i / FPS})
    return np.stack(vectors).astype(np.float32), pd.DataFrame(rows)


def write_extraction(
    out: Path, vectors: np.ndarray, metadata: pd.DataFrame, *, model: str = "vtr-tiny", shard_rows: int = 7
) -> Path:
    """An extraction folder in ``vtr extract``'s layout, the vectors split into shards of ``shard_rows``."""
    (out / "embeddings").mkdir(parents=True, exist_ok=True)
    metadata = metadata.copy()
    metadata["shard"] = np.arange(len(metadata)) // shard_rows
    metadata["row"] = np.arange(len(metadata)) % shard_rows
    for shard in sorted(set(metadata["shard"])):
        np.save(out / "embeddings" / f"shard-{shard:05d}.npy", vectors[metadata["shard"].to_numpy() == shard])
    metadata.to_parquet(out / "metadata.parquet", index=False)
    info = {"model": model, "dim": int(vectors.shape[1]), "settings": {"pretrained": ""}, "key": "test"}
    (out / "extraction.json").write_text(json.dumps(info))
    return out


def random_extraction(out: Path, videos: int, frames: int = 4, dim: int = 16, seed: int = 0, **kw) -> Path:
    frame_vectors = unit(np.random.default_rng(seed).standard_normal((videos, frames, dim)))
    return write_extraction(out, *fake_rows(frame_vectors), **kw)


# ------------------------------------------------------------------------------------------ exactness


def test_flat_search_equals_numpy_brute_force() -> None:
    rng = np.random.default_rng(1)
    vectors, queries = unit(rng.standard_normal((3000, 32))), unit(rng.standard_normal((20, 32)))
    index = VideoIndex("m", 32, kind="flat")
    index.add(vectors, pd.DataFrame({"video_id": np.arange(3000) // 3, "kind": "frame"}))
    true_scores, true_ids = brute_force_search(vectors, queries, 10)
    for query, ids, scores in zip(queries, true_ids, true_scores, strict=True):
        rows = index.search_rows(query, 10)
        np.testing.assert_array_equal(rows["id"].to_numpy(), ids)
        np.testing.assert_allclose(rows["score"].to_numpy(), scores, rtol=1e-5, atol=1e-6)


def test_ivf_recall_at_10_on_clustered_data_at_default_nprobe() -> None:
    vectors = clustered(20_000, 64, clusters=200, seed=2)
    rng = np.random.default_rng(3)  # queries near stored vectors, not equal to them
    queries = unit(vectors[rng.integers(0, len(vectors), 50)] + rng.standard_normal((50, 64)) * 0.1)
    index = VideoIndex("m", 64, kind="ivf")
    index.add(vectors, pd.DataFrame({"video_id": np.arange(len(vectors)), "kind": "frame"}))
    assert index.kind == "ivf" and index.params["nprobe"] == vindex.DEFAULT_NPROBE
    _, truth = brute_force_search(vectors, queries, 10)
    found = np.stack([index.search_rows(q, 10)["id"].to_numpy() for q in queries])
    assert recall_at_k(found, truth) >= 0.95
    # scanning a single cell must lose neighbours: the check above is not vacuous
    one_cell = np.stack([index.search_rows(q, 10, nprobe=1)["id"].to_numpy() for q in queries])
    assert recall_at_k(one_cell, truth) < recall_at_k(found, truth)
    assert index.recall_estimate["recall@10"] >= 0.9 and index.recall_estimate["queries"] == 64


def test_recall_estimate_reveals_an_ivf_that_misses_neighbours() -> None:
    vectors = unit(np.random.default_rng(11).standard_normal((5000, 32)))  # no clusters to find
    index = VideoIndex("m", 32, kind="ivf", params={"nprobe": 1})
    index.add(vectors, pd.DataFrame({"video_id": np.arange(5000), "kind": "frame"}))
    assert index.recall_estimate["recall@10"] < 0.5


def test_build_widens_nprobe_until_the_estimated_recall_is_reached() -> None:
    vectors = unit(np.random.default_rng(12).standard_normal((5000, 32)))
    index = VideoIndex("m", 32, kind="ivf")  # nprobe not given: tuned
    index.add(vectors, pd.DataFrame({"video_id": np.arange(5000), "kind": "frame"}))
    nlist, nprobe = index.params["nlist"], index.params["nprobe"]
    assert nprobe > vindex.DEFAULT_NPROBE
    assert index.recall_estimate["recall@10"] >= vindex.TARGET_RECALL or nprobe * 2 > nlist // 2
    assert index._faiss.nprobe == nprobe


def test_hnsw_finds_the_stored_vector_itself() -> None:
    vectors = clustered(1000, 32, clusters=20, seed=4)
    index = VideoIndex("m", 32, kind="hnsw")
    index.add(vectors, pd.DataFrame({"video_id": np.arange(1000), "kind": "frame"}))
    hits = [index.search_rows(vectors[i], 1)["id"].iloc[0] for i in range(0, 1000, 50)]
    assert hits == list(range(0, 1000, 50))


def test_auto_kind_switches_at_the_measured_threshold() -> None:
    assert choose_kind("auto", vindex.FLAT_MAX_ROWS) == "flat"
    assert choose_kind("auto", vindex.FLAT_MAX_ROWS + 1) == "ivf"
    assert choose_kind("hnsw", 10) == "hnsw"
    with pytest.raises(SearchIndexError, match="not one of auto, flat, ivf, hnsw"):
        choose_kind("lsh", 10)


# ------------------------------------------------------------------------------------------ adding


def test_flat_grows_in_place_and_auto_moves_to_ivf_past_the_threshold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(vindex, "FLAT_MAX_ROWS", 1000)
    vectors = clustered(3000, 16, clusters=30, seed=5)
    meta = pd.DataFrame({"video_id": np.arange(3000), "kind": "frame"})
    index = VideoIndex("m", 16)
    index.add(vectors[:500], meta[:500])
    flat = index._faiss
    index.add(vectors[500:900], meta[500:900])
    assert index.kind == "flat" and index._faiss is flat and len(index) == 900  # appended, not rebuilt
    index.add(vectors[900:], meta[900:])
    assert index.kind == "ivf" and len(index) == 3000 and index.trained_count == 3000
    # ids stay row numbers across the switch: each vector finds itself with its metadata row
    for i in (0, 899, 2999):
        assert index.search_rows(vectors[i], 1)["video_id"].iloc[0] == i


def test_ivf_keeps_its_cells_until_the_collection_grows_past_the_factor() -> None:
    vectors = clustered(10_000, 16, clusters=40, seed=6)
    meta = pd.DataFrame({"video_id": np.arange(10_000), "kind": "frame"})
    index = VideoIndex("m", 16, kind="ivf")
    index.add(vectors[:2000], meta[:2000])
    trained = index._faiss
    index.add(vectors[2000:8000], meta[2000:8000])  # 8000 = 4 x 2000: not past the factor yet
    assert index._faiss is trained and index.trained_count == 2000
    index.add(vectors[8000:], meta[8000:])
    assert index._faiss is not trained and index.trained_count == 10_000
    assert index.params["nlist"] == vindex.default_nlist(10_000)
    np.testing.assert_allclose(index.vectors(), vectors, atol=1e-6)


def test_build_again_adds_only_new_extraction_rows(tmp_path: Path) -> None:
    frame_vectors = unit(np.random.default_rng(7).standard_normal((5, 4, 16)))
    first = write_extraction(tmp_path / "x1", *fake_rows(frame_vectors[:3]))
    built = build_index(first, tmp_path / "index")
    assert len(built) == 3 * 5
    grown = write_extraction(tmp_path / "x2", *fake_rows(frame_vectors), shard_rows=4)  # other sharding
    updated = build_index(grown, tmp_path / "index")
    assert len(updated) == 5 * 5
    assert updated.metadata["video_id"].value_counts().eq(5).all()  # no row twice
    scratch = build_index(grown, tmp_path / "scratch")
    query = frame_vectors[4, 1]
    pd.testing.assert_frame_equal(updated.search(query, 5), scratch.search(query, 5))


# ------------------------------------------------------------------------------------------ searching


def test_search_ranks_videos_with_their_best_frame_times() -> None:
    frame_vectors = unit(np.random.default_rng(8).standard_normal((6, 5, 24)))
    vectors, meta = fake_rows(frame_vectors)
    index = VideoIndex("m", 24)
    index.add(vectors, meta)
    hits = index.search(frame_vectors[3, 2], k=4)
    assert list(hits.columns) == list(vindex.RESULT_COLUMNS)
    assert hits["rank"].tolist() == [1, 2, 3, 4] and hits["video_id"].is_unique
    assert hits["score"].is_monotonic_decreasing
    top = hits.iloc[0]
    assert top["video_id"] == "video003" and top["best_time_s"] == pytest.approx(2 / FPS)
    assert top["score"] == pytest.approx(1.0, abs=1e-5)
    assert top["frame_scores"] == sorted(top["frame_scores"], reverse=True)
    assert top["video_path"] == "/videos/video003.mp4"


def test_search_fetches_more_rows_until_k_videos() -> None:
    # video 0 has 200 near-identical frames: the first rows fetched are all its own
    rng = np.random.default_rng(9)
    base = unit(rng.standard_normal(16))
    crowd = unit(base + 0.01 * rng.standard_normal((1, 200, 16)))
    others = unit(rng.standard_normal((5, 200, 16)))
    vectors, meta = fake_rows(np.concatenate([crowd, others]))
    index = VideoIndex("m", 16, kind="flat")
    index.add(vectors, meta)
    hits = index.search(base, k=3)
    assert len(hits) == 3 and hits["video_id"].iloc[0] == "video000" and hits["video_id"].is_unique


# ------------------------------------------------------------------------------------------ files


def test_save_load_round_trip(tmp_path: Path) -> None:
    extract = random_extraction(tmp_path / "x", videos=12, dim=16)
    built = build_index(extract, tmp_path / "index", kind="ivf", nlist=2, nprobe=2)
    assert {p.name for p in (tmp_path / "index").iterdir()} == {
        "index.faiss",
        "metadata.parquet",
        "index.json",
    }
    info = json.loads((tmp_path / "index" / "index.json").read_text())
    assert info["model"] == "vtr-tiny" and info["dim"] == 16 and info["kind"] == "ivf"
    assert info["count"] == 12 * 5 and info["params"] == {"nlist": 2, "nprobe": 2}
    loaded = VideoIndex.load(tmp_path / "index")
    assert (loaded.kind, loaded.params, len(loaded)) == ("ivf", built.params, len(built))
    pd.testing.assert_frame_equal(loaded.metadata, built.metadata)
    query = read_extraction(extract).vectors[7]
    pd.testing.assert_frame_equal(loaded.search(query, 5), built.search(query, 5))


def test_load_refuses_files_that_disagree(tmp_path: Path) -> None:
    build_index(random_extraction(tmp_path / "x", videos=3), tmp_path / "index")
    info_path = tmp_path / "index" / "index.json"
    info = json.loads(info_path.read_text())
    info_path.write_text(json.dumps({**info, "count": info["count"] + 1}))
    with pytest.raises(SearchIndexError, match="disagree.*rebuild"):
        VideoIndex.load(tmp_path / "index")


def test_missing_index_and_extraction_name_the_folder(tmp_path: Path) -> None:
    with pytest.raises(MissingIndexError, match=f"{tmp_path / 'nowhere'}.*index.json not found"):
        VideoIndex.load(tmp_path / "nowhere")
    with pytest.raises(MissingIndexError, match="extraction.json: not found"):
        build_index(tmp_path / "nothing", tmp_path / "index")


def test_bad_extraction_names_the_file_and_field(tmp_path: Path) -> None:
    extract = random_extraction(tmp_path / "x", videos=2)
    meta = pd.read_parquet(extract / "metadata.parquet")
    meta.drop(columns="time_s").to_parquet(extract / "metadata.parquet")
    with pytest.raises(SearchIndexError, match=r"metadata.parquet: columns \['time_s'\] are missing"):
        read_extraction(extract)
    extract = random_extraction(tmp_path / "y", videos=2, dim=16)
    info = json.loads((extract / "extraction.json").read_text())
    (extract / "extraction.json").write_text(json.dumps({**info, "dim": 8}))
    with pytest.raises(IndexMismatchError, match=r"shard-00000.npy: shape \(7, 16\), but .* says dim 8"):
        read_extraction(extract)


def test_other_model_or_dimension_is_refused(tmp_path: Path) -> None:
    build_index(random_extraction(tmp_path / "x", videos=3, dim=16), tmp_path / "index")
    other_model = random_extraction(tmp_path / "y", videos=3, dim=16, model="ViT-B-32")
    with pytest.raises(IndexMismatchError, match="built with model 'vtr-tiny'.*uses 'ViT-B-32'"):
        build_index(other_model, tmp_path / "index")
    other_dim = random_extraction(tmp_path / "z", videos=3, dim=8)
    with pytest.raises(IndexMismatchError, match="has dimension 16.*has dimension 8"):
        build_index(other_dim, tmp_path / "index")
    index = VideoIndex.load(tmp_path / "index")
    with pytest.raises(IndexMismatchError, match=r"shape \(1, 8\), but the index has dim 16"):
        index.search(np.ones(8, dtype=np.float32), 3)
    with pytest.raises(SearchIndexError, match="the query is empty"):
        index.search("  ", 3)


# ------------------------------------------------------------------------------------------ command line


@pytest.fixture(scope="module")
def tiny_extraction(tmp_path_factory: pytest.TempPathFactory, random_tiny_encoder) -> Path:
    """A fake extraction of 6 random-pixel videos embedded by the (random-weight) tiny encoder."""
    frames = np.random.default_rng(10).integers(0, 256, (6, 3, 64, 64, 3), dtype=np.uint8)
    frame_vectors = np.stack([random_tiny_encoder.encode_frames(video) for video in frames])
    return write_extraction(tmp_path_factory.mktemp("extract"), *fake_rows(frame_vectors))


RANDOM_TINY = ["--set", "model.pretrained=''"]  # the sample profile's vtr-tiny, seeded random weights


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_builds_and_searches_with_the_profile_encoder(
    tiny_extraction: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from vtr.models.encoders import create_encoder

    index_dir = tmp_path / "index"
    code, out, _ = run_cli(["index", "build", str(tiny_extraction), "--out", str(index_dir)], capsys)
    assert code == 0 and "24 embeddings (24 added), flat" in out
    code, out, _ = run_cli(["index", "build", str(tiny_extraction), "--out", str(index_dir)], capsys)
    assert code == 0 and "24 embeddings (0 added)" in out

    torch.manual_seed(0)  # the CLI makes its encoder with the same seeded random weights as below
    code, out, _ = run_cli(
        ["search", "a red circle", "--index", str(index_dir), "-k", "4", *RANDOM_TINY], capsys
    )
    assert code == 0
    torch.manual_seed(0)
    encoder = create_encoder("vtr-tiny", "", device="cpu")
    expected = VideoIndex.load(index_dir).search(encoder.encode_text(["a red circle"])[0], 4)
    lines = out.strip().splitlines()
    assert len(lines) == 4
    for line, row in zip(lines, expected.itertuples(), strict=True):
        rank, score, video_id, _, times, path = line.split(maxsplit=5)[:6]
        assert (int(rank), video_id, float(score)) == (
            row.rank,
            row.video_id,
            pytest.approx(row.score, abs=1e-4),
        )
        assert times.rstrip(",") == f"{row.frame_times[0]:.2f}s" and path.endswith(f"{row.video_id}.mp4")


def test_cli_errors_are_one_line_with_exit_2(
    tiny_extraction: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing"
    code, _, err = run_cli(["search", "cat", "--index", str(missing), *RANDOM_TINY], capsys)
    assert code == 2 and str(missing) in err and len(err.strip().splitlines()) == 1

    other_model = tmp_path / "vitb"
    build_index(random_extraction(tmp_path / "xb", videos=2, dim=512, model="ViT-B-32"), other_model)
    code, _, err = run_cli(["search", "cat", "--index", str(other_model), *RANDOM_TINY], capsys)
    assert code == 2 and "ViT-B-32" in err and "vtr-tiny" in err and str(other_model) in err

    other_dim = tmp_path / "dim"
    build_index(random_extraction(tmp_path / "xd", videos=2, dim=7), other_dim)
    code, _, err = run_cli(["search", "cat", "--index", str(other_dim), *RANDOM_TINY], capsys)
    assert code == 2 and "dimension 7" in err and str(other_dim) in err

    code, _, err = run_cli(["search", " ", "--index", str(other_dim)], capsys)
    assert code == 2 and "query is empty" in err
    code, _, err = run_cli(
        ["index", "build", str(tiny_extraction), "--out", str(tmp_path / "i"), "--kind", "lsh"], capsys
    )
    assert code == 2 and "lsh" in err
    code, _, err = run_cli(["index", "build", str(tmp_path / "none"), "--out", str(tmp_path / "i")], capsys)
    assert code == 2 and "extraction.json" in err


def test_text_query_without_a_recorded_encoder_asks_for_one() -> None:
    index = VideoIndex("vtr-tiny", 4, settings={"pretrained": "vtr-tiny"})
    index.add(unit(np.ones((1, 4))), pd.DataFrame({"video_id": ["v"], "kind": ["video"]}))
    with pytest.raises(SearchIndexError, match=r"encoder=load_encoder\(profile\)"):
        index.search("a cat", 1)


def test_shards_named_by_file_read_like_numbered_ones(tmp_path: Path) -> None:
    extract = random_extraction(tmp_path / "x", videos=3)
    numbered = read_extraction(extract)
    meta = pd.read_parquet(extract / "metadata.parquet")
    meta["shard"] = meta["shard"].map("shard-{:05d}.npy".format)
    meta.to_parquet(extract / "metadata.parquet")
    np.testing.assert_array_equal(read_extraction(extract).vectors, numbered.vectors)


def test_cli_build_warns_when_the_estimated_recall_is_low(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extract = random_extraction(tmp_path / "x", videos=400, dim=16)
    argv = ["index", "build", str(extract), "--out", str(tmp_path / "i"), "--kind", "ivf", "--nprobe", "1"]
    code, out, err = run_cli(argv, capsys)
    assert code == 0 and "estimated recall@10" in out
    assert "warning" in err and "raise --nprobe" in err
