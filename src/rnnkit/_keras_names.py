"""Keras names that rnnkit does not have, and what to use instead.

Each public module ends with ``__getattr__ = missing_name_hook(__name__, ALTERNATIVES[...])``
(PEP 562), so ``rnnkit.layers.ConvLSTM2D`` raises an AttributeError that says the name is a
Keras name rnnkit does not provide and what to use, instead of a bare "has no attribute".
"""

from __future__ import annotations

_CONV = ("flatten each frame and use TimeDistributed(Dense(...)) followed by LSTM (rnnkit has "
         "no convolutional recurrent layers)")

#: module -> {Keras name: what to use in rnnkit}
ALTERNATIVES = {
    "rnnkit.layers": {
        "ConvLSTM1D": _CONV,
        "ConvLSTM2D": _CONV,
        "ConvLSTM3D": _CONV,
        "CuDNNLSTM": "LSTM (same weights and numbers; rnnkit runs compiled CPU kernels)",
        "CuDNNGRU": "GRU (reset_after=True is the cuDNN variant)",
        "Attention": "a recurrent encoder such as Bidirectional(LSTM(...)) (rnnkit has no "
                               "attention layers)",
        "MultiHeadAttention": "a recurrent encoder such as Bidirectional(LSTM(...)) (rnnkit has no "
                               "attention layers)",
        "Lambda": "a Layer subclass with forward/backward written out (rnnkit has no "
                  "autograd), registered with rnnkit.layers.register_layer",
        "RepeatVector": "return_sequences=True on the encoder, or feed the repeated vector as "
                        "input",
    },
    "rnnkit.optimizers": {
        "Lion": "Adam, AdamW or Nadam",
        "Adamax": "Adam or Nadam",
        "Adadelta": "Adagrad or RMSprop",
        "Ftrl": "Adagrad",
        "Adafactor": "Adam (with clipnorm) or AdamW",
        "LossScaleOptimizer": "the optimizer itself (rnnkit trains in float32 or "
                              "float64; no loss scaling is needed)",
    },
    "rnnkit.losses": {
        "Hinge": "binary_crossentropy (probabilistic outputs)",
        "SquaredHinge": "binary_crossentropy",
        "CategoricalHinge": "categorical_crossentropy",
        "MeanSquaredLogarithmicError": "mse on log1p-transformed targets",
        "MeanAbsolutePercentageError": "mae on scaled targets (rnnkit.tasks.mape scores "
                                       "forecasts)",
        "BinaryFocalCrossentropy": "binary_crossentropy with class_weight= in fit",
        "CategoricalFocalCrossentropy": "categorical_crossentropy with class_weight= in fit",
        "CTC": "per-step sparse_categorical_crossentropy (rnnkit has no CTC loss)",
    },
    "rnnkit.metrics": {
        "MeanIoU": "Precision / Recall / F1Score per class",
        "R2Score": "mean_squared_error (R2 = 1 - mse / var(y))",
        "MeanAbsolutePercentageError": "rnnkit.tasks.mape for forecasts",
    },
    "rnnkit.callbacks": {
        "TensorBoard": "CSVLogger (one row per epoch) or History",
        "BackupAndRestore": "ModelCheckpoint (exact resume from the saved .rnnkit file)",
        "RemoteMonitor": "LambdaCallback",
    },
}


def missing_name_hook(module_name, public):
    """A module ``__getattr__`` raising a helpful AttributeError for missing names.

    Args:
        module_name: the module's ``__name__``.
        public: the module's public names (listed in the message for unknown names).
    """
    table = ALTERNATIVES.get(module_name, {})

    def __getattr__(name):
        if name.startswith("__"):
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        if name in table:
            raise AttributeError(f"{module_name}.{name} is a Keras name that is not in rnnkit. "
                                 f"Use instead: {table[name]}.")
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}; it is not in "
                             f"rnnkit. Available: {', '.join(sorted(public))}.")

    return __getattr__
