import pytest
import torch

import retune_lib as rt


def test_cache_dir_env(tmp_path, monkeypatch):
    monkeypatch.setenv("RETUNE_CACHE", str(tmp_path / "c"))
    assert rt.cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()
    monkeypatch.delenv("RETUNE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert rt.cache_dir() == tmp_path / "x" / "retune"


def test_roundtrip_and_digest(tmp_path):
    payload = {"w": torch.arange(6.0).view(2, 3), "n": torch.tensor(3), "meta": {"a": 1, "s": "x"}}
    path = rt.save_checked(payload, tmp_path / "f.pt")
    back = rt.load_checked(path)
    assert torch.equal(back["w"], payload["w"]) and back["meta"] == {"a": 1, "s": "x"}


def test_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": 1, "digest": "", "payload": {"f": print}}, path)
    with pytest.raises(rt.CacheError, match="is unreadable"):
        rt.load_checked(path)


def test_missing_and_wrong_format(tmp_path):
    with pytest.raises(rt.CacheError, match="no cached file"):
        rt.load_checked(tmp_path / "nope.pt")
    torch.save({"x": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(rt.CacheError, match="not a retune cache file"):
        rt.load_checked(tmp_path / "other.pt")
    with pytest.raises(TypeError, match="stores a dict"):
        rt.save_checked([1, 2], tmp_path / "l.pt")


def test_tampered_tensor_detected(tmp_path):
    path = rt.save_checked({"w": torch.zeros(1000)}, tmp_path / "t.pt")
    record = torch.load(path, weights_only=True)
    record["payload"]["w"][3] = 1.0
    torch.save(record, path)
    with pytest.raises(rt.CacheError, match="do not match the stored digest"):
        rt.load_checked(path)
