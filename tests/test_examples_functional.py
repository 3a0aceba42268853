"""The functional-API examples learn their tasks (small settings so CI stays quick)."""

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _example(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "examples",
                                                                     f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_lstm_fcn_classifies_japanese_vowels(capsys):
    acc = _example("lstm_fcn").main(["--epochs", "30", "--filters", "32,64,32"])
    print(f"LSTM-FCN (filters 32,64,32, 30 epochs) on Japanese Vowels: test accuracy {acc:.4f}")
    assert acc >= 0.95


@pytest.mark.slow
def test_seq2seq_attention_learns_to_reverse(capsys):
    token, seq = _example("seq2seq_attention").main(
        ["--epochs", "8", "--length", "5", "--train", "2000"])
    print(f"seq2seq + attention, reverse 5 digits: token accuracy {token:.4f}, sequence {seq:.4f}")
    assert token >= 0.95 and seq >= 0.8
