"""bench/plot.py draws the bench's ratio table: a PNG from a results JSON of bench_lstm.py's shape."""

import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import plot  # noqa: E402


def timing(ms):
    return {"median_ms": ms, "iqr_pct": 1.0, "samples": 3}


def test_ratios_and_png(tmp_path):
    data = {
        "torch": "2.13.0", "host": {"cpu": "test CPU", "flags": "avx2", "fastlstm_level": "avx2"},
        "results": {"C1": {"inference": {"torch.nn.LSTM": timing(2.0), "fastlstm": timing(1.0),
                                         "onnxruntime": timing(1.5)},
                           "training": {"torch.nn.LSTM": timing(3.0), "fastlstm": timing(2.0)}}},
        "goals": [("fastlstm.GRU vs torch.nn.GRU, C1 (100, 64, 512, 512) inference: torch 4 ms", "1.31x", ">= 1.2x",
                   True),
                  ("fastlstm.GRU vs ONNX Runtime's GRU, C1 inference: 3 ms", "1.00x", ">= 1.0x", True)],
    }
    table = plot.ratios_of(data)
    assert table["C1"]["inference"] == {"LSTM vs torch.nn.LSTM": 2.0, "LSTM vs ONNX Runtime": 1.5,
                                        "GRU vs torch.nn.GRU": 1.31, "GRU vs ONNX Runtime's GRU": 1.0}
    assert table["C1"]["training"] == {"LSTM vs torch.nn.LSTM": 1.5}
    target = tmp_path / "ratios.png"
    plot.write_png(data, target)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
