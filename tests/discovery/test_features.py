"""Feature sources: files users bring, our features.npz, resizing, a pre-trained encoder."""

from __future__ import annotations

import numpy as np
import pytest

from semantic_genesis.discovery.features import (
    Features,
    encoder_features,
    load_features,
    read_feature_file,
    resize_volume,
    save_features,
)
from semantic_genesis.io.manifests import CohortRecord
from semantic_genesis.utils.errors import SemgenError


def _records(ids=("a", "b", "c")):
    return [CohortRecord(id=i, split="val" if i == "c" else "train", source="", modality="ct",
                         shape=(8, 8, 8), spacing=(1, 1, 1), sha256="", file="")
            for i in ids]


def test_npz_npy_csv_give_the_same_features(tmp_path) -> None:
    recs = _records()
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.savez(tmp_path / "f.npz", ids=np.array(["c", "a", "b", "extra"]),
             features=np.concatenate([x[[2, 0, 1]], np.ones((1, 4))]))
    np.save(tmp_path / "f.npy", x)
    (tmp_path / "f.csv").write_text("id,f0,f1,f2,f3\n" + "".join(
        f"{i}," + ",".join(str(v) for v in row) + "\n" for i, row in zip("abc", x, strict=True)))
    for name in ("f.npz", "f.npy", "f.csv"):
        feats = read_feature_file(tmp_path / name, recs)
        assert feats.ids == ["a", "b", "c"] and feats.split == ["train", "train", "val"]
        assert np.array_equal(feats.features, x)


def test_bad_feature_files(tmp_path) -> None:
    recs = _records()
    np.savez(tmp_path / "missing.npz", ids=np.array(["a"]), features=np.ones((1, 2)))
    np.save(tmp_path / "shape.npy", np.ones((2, 3)))
    np.save(tmp_path / "nan.npy", np.full((3, 2), np.nan))
    (tmp_path / "f.txt").write_text("x")
    (tmp_path / "noid.csv").write_text("name,f0\na,1\n")
    for name, msg in [("missing.npz", "no features for 2"), ("shape.npy", "must be"),
                      ("nan.npy", "NaN"), ("f.txt", ".npz, .npy or .csv"),
                      ("noid.csv", "'id'"), ("absent.npz", "not found")]:
        with pytest.raises(SemgenError, match=msg) as err:
            read_feature_file(tmp_path / name, recs)
        assert name in str(err.value)


def test_features_npz_round_trip(tmp_path) -> None:
    feats = Features(["a", "b"], np.eye(2, 3, dtype=np.float32), ["train", "val"])
    back, key = load_features(save_features(tmp_path / "features.npz", feats, key="k1"))
    assert back.ids == feats.ids and back.split == feats.split and key == "k1"
    assert np.array_equal(back.features, feats.features) and back.rows("val").tolist() == [1]


def test_resize_volume() -> None:
    vol = np.full((50, 20, 30), 0.3, np.float16)
    out = resize_volume(vol, (32, 32, 16))  # shrink x and z, grow y
    assert out.shape == (32, 32, 16) and out.dtype == np.float32
    assert np.allclose(out, 0.3, atol=1e-3)
    ramp = np.linspace(0, 1, 64, dtype=np.float32)[:, None, None] * np.ones((1, 8, 8))
    small = resize_volume(ramp, (16, 8, 8))
    assert np.all(np.diff(small[:, 0, 0]) > 0) and small.min() >= 0 and small.max() <= 1


def test_encoder_features_from_a_checkpoint(tmp_path) -> None:
    from semantic_genesis.models import create_model, save_model

    model = create_model("unet3d", width=2)
    path = save_model(tmp_path / "enc.pt", model)
    inputs = np.random.default_rng(0).random((3, 16, 16, 16)).astype(np.float16)
    feats = encoder_features(path, inputs, batch=2)
    assert feats.shape == (3, model.bottleneck_channels) and np.isfinite(feats).all()
    with pytest.raises(SemgenError):
        encoder_features(tmp_path / "absent.pt", inputs)
