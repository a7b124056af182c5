"""Client.fit: trains a model on NumPy arrays for some epochs, Keras-style.

    history = client.fit(model_id, x, y, epochs=5, batch_size=64, validation=(x_test, y_test))
    history["loss"], history["val_accuracy"]   # one value per epoch

Each epoch is one Train stream (so converting and sending a batch overlaps training the one
before); validation runs Infer in inference mode with the loss and metrics as outputs.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, TextIO, Union

import numpy as np

from backflow.v1 import tensor_pb2

#: Arrays for fit: one array (the model's only non-label input) or placeholder name -> array.
Features = Union[np.ndarray, Mapping[str, Any]]
#: Validation data: (x, y), or placeholder name -> array with the labels included.
Validation = Union[tuple[Features, Any], Mapping[str, Any]]


@dataclass
class History:
    """What fit measured, one dict per epoch: `loss` and each metric (means over the epoch's
    training samples, each taken before its step's update), `val_loss` and `val_METRIC` with
    validation data, `samples`, `seconds` and `step` (the model's step after the epoch).
    `history["loss"]` lists one key over the epochs."""

    epochs: list[dict[str, float]] = field(default_factory=list)

    def __getitem__(self, key: str) -> list[float]:
        if not self.epochs or key not in self.epochs[0]:
            known = ", ".join(self.epochs[0]) if self.epochs else "none: no epoch ran"
            raise KeyError(f"{key!r} is not in the history (recorded: {known})")
        return [epoch[key] for epoch in self.epochs]

    @property
    def history(self) -> dict[str, list[float]]:
        """Key -> one value per epoch (as Keras's History.history)."""
        return {key: self[key] for key in (self.epochs[0] if self.epochs else {})}


def label_input(info: Any) -> str:
    """The placeholder that takes the labels: one named "labels", else the only one of rank 1."""
    names = [tensor.name for tensor in info.inputs]
    if "labels" in names:
        return "labels"
    rank_one = [tensor.name for tensor in info.inputs if len(tensor.shape) == 1]
    if len(rank_one) == 1:
        return rank_one[0]
    raise ValueError(f"cannot tell which of the model's inputs ({', '.join(names)}) takes the "
                     "labels; pass x as a dict of placeholder name -> array, labels included")


_INTEGER_DTYPES = {tensor_pb2.INT32: np.int32, tensor_pb2.INT64: np.int64}


def _as_integers(values: np.ndarray, name: str, dtype: Any) -> np.ndarray:
    """Labels held as floats (as Fashion-MNIST loads them) for an integer placeholder (as an ONNX
    import declares its labels): cast when every value is a whole number, else refuse."""
    if np.issubdtype(values.dtype, np.integer):
        return values.astype(dtype, copy=False)
    if not np.issubdtype(values.dtype, np.floating):
        raise ValueError(f"input '{name}' takes integers, not {values.dtype}")
    if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
        raise ValueError(f"input '{name}' takes integer class ids; these values are not whole "
                         "numbers")
    return values.astype(dtype)


def dataset(info: Any, x: Features, y: Any = None) -> dict[str, np.ndarray]:
    """Placeholder name -> array for `info`'s model from fit's (x, y), checked to have one
    length and to name only the model's placeholders."""
    names = [tensor.name for tensor in info.inputs]
    if isinstance(x, Mapping):
        arrays = {name: np.asarray(value) for name, value in x.items()}
    else:
        label = label_input(info) if y is not None else ""
        features = [name for name in names if name != label]
        if len(features) != 1:
            raise ValueError(f"x is one array but the model takes {', '.join(features)}; pass x "
                             "as a dict of placeholder name -> array")
        arrays = {features[0]: np.asarray(x)}
    if y is not None:
        label = label_input(info)
        if label in arrays:
            raise ValueError(f"labels given twice: in x['{label}'] and as y")
        arrays[label] = np.asarray(y)
    unknown = sorted(set(arrays) - set(names))
    if unknown:
        raise ValueError(f"the model has no input {', '.join(unknown)} (its inputs: "
                         f"{', '.join(names)})")
    for tensor in info.inputs:
        if tensor.name in arrays and tensor.dtype in _INTEGER_DTYPES:
            arrays[tensor.name] = _as_integers(arrays[tensor.name], tensor.name,
                                               _INTEGER_DTYPES[tensor.dtype])
    lengths = {name: (len(value) if value.ndim else 0) for name, value in arrays.items()}
    if len(set(lengths.values())) != 1 or 0 in lengths.values():
        described = ", ".join(f"{name}: {length}" for name, length in lengths.items())
        raise ValueError(f"every array needs the same number of samples, at least 1 ({described})")
    return arrays


class _Progress:
    """A tqdm bar on a terminal when tqdm is installed, else one line per epoch."""

    def __init__(self, enabled: Optional[bool], out: TextIO) -> None:
        self.out = out
        self.enabled = enabled if enabled is not None else True
        self._bar_factory = None
        if self.enabled and out.isatty():
            try:
                from tqdm import tqdm  # Debian's python3-tqdm; optional
                self._bar_factory = tqdm
            except ImportError:
                pass
        self._bar: Any = None

    def start(self, epoch: int, epochs: int, samples: int) -> None:
        if self._bar_factory is not None:
            self._bar = self._bar_factory(total=samples, unit="sample", file=self.out,
                                          desc=f"epoch {epoch}/{epochs}", leave=True)

    def advance(self, samples: int, loss: float) -> None:
        if self._bar is not None:
            self._bar.update(samples)
            self._bar.set_postfix(loss=f"{loss:.4f}")

    def finish(self, epoch: int, epochs: int, record: dict[str, float]) -> None:
        shown = "  ".join(f"{key} {value:.4f}" for key, value in record.items()
                          if key not in ("samples", "seconds", "step"))
        rate = record["samples"] / max(record["seconds"], 1e-9)
        if self._bar is not None:
            self._bar.set_postfix_str(shown)
            self._bar.close()
            self._bar = None
        elif self.enabled:
            print(f"epoch {epoch}/{epochs}: {shown}  ({rate:,.0f} samples/s, step "
                  f"{int(record['step'])})", file=self.out, flush=True)


def _weighted_mean(totals: dict[str, float], count: int) -> dict[str, float]:
    return {key: value / count for key, value in totals.items()}


class FitMixin:
    """Client.fit and Client.validate (Client inherits them)."""

    def fit(self, model_id: str, x: Features, y: Any = None, *, epochs: int = 1,
            batch_size: int = 32, validation: Optional[Validation] = None, shuffle: bool = True,
            seed: int = 0, learning_rate: Optional[float] = None, progress: Optional[bool] = None,
            out: Optional[TextIO] = None) -> History:
        """Trains `model_id` for `epochs` passes over the data, `batch_size` samples a step
        (the last batch of an epoch may be smaller).

        x: the model's one non-label input as an array, or placeholder name -> array (then y
        may be omitted, labels included). y: the labels, for the placeholder named "labels" or
        else the model's only rank-1 placeholder. validation: (x, y) or a dict, evaluated after
        each epoch. shuffle: a new order each epoch from `seed` (False: the given order).
        learning_rate: overrides the model's for these steps. progress: None or True shows a
        bar on a terminal (with tqdm installed) or one line per epoch on `out` (stderr);
        False is silent. Returns the History; a failing step raises BackflowError.
        """
        if epochs < 0 or batch_size < 1:
            raise ValueError(f"epochs must be >= 0 and batch_size >= 1 (got {epochs}, "
                             f"{batch_size})")
        info = self.get_model(model_id)  # type: ignore[attr-defined]
        if not info.loss:
            raise ValueError(f"model {model_id} has no loss: it serves inference only")
        data = dataset(info, x, y)
        held_out = _validation_set(info, validation)
        samples = len(next(iter(data.values())))
        rng = np.random.default_rng(seed)
        progress_out = _Progress(progress, out if out is not None else sys.stderr)
        history = History()
        for epoch in range(1, epochs + 1):
            order = rng.permutation(samples) if shuffle else np.arange(samples)
            batches = ({name: value[order[start:start + batch_size]]
                        for name, value in data.items()}
                       for start in range(0, samples, batch_size))
            progress_out.start(epoch, epochs, samples)
            began = time.monotonic()
            totals: dict[str, float] = {}
            done = 0
            step = info.step
            for result in self.train(model_id, batches,  # type: ignore[attr-defined]
                                     learning_rate=learning_rate):
                rows = min(batch_size, samples - done)
                done += rows
                step = result.step
                for key, value in {"loss": result.loss, **result.metrics}.items():
                    totals[key] = totals.get(key, 0.0) + value * rows
                progress_out.advance(rows, result.loss)
            record = _weighted_mean(totals, samples)
            if held_out is not None:
                record.update({f"val_{key}": value for key, value in
                               self.validate(model_id, held_out, batch_size=batch_size).items()})
            record.update(samples=float(samples), seconds=time.monotonic() - began,
                          step=float(step))
            history.epochs.append(record)
            progress_out.finish(epoch, epochs, record)
        return history

    def validate(self, model_id: str, data: Mapping[str, Any],
                 batch_size: int = 256) -> dict[str, float]:
        """The loss and metrics of `model_id` on `data` (placeholder name -> array, labels
        included) in inference mode: means over the samples, computed `batch_size` rows a call
        with Infer. Changes nothing on the server."""
        info = self.get_model(model_id)  # type: ignore[attr-defined]
        if not info.loss:
            raise ValueError(f"model {model_id} has no loss: it serves inference only")
        arrays = dataset(info, data)
        samples = len(next(iter(arrays.values())))
        outputs = [info.loss, *info.metrics]
        totals = dict.fromkeys(outputs, 0.0)
        for start in range(0, samples, batch_size):
            batch = {name: value[start:start + batch_size] for name, value in arrays.items()}
            rows = len(next(iter(batch.values())))
            values = self.infer(model_id, batch, outputs)  # type: ignore[attr-defined]
            for name in outputs:
                totals[name] += float(np.asarray(values[name]).reshape(())) * rows
        means = _weighted_mean(totals, samples)
        return {"loss": means[info.loss], **{name: means[name] for name in info.metrics}}


def _validation_set(info: Any, validation: Optional[Validation]) -> Optional[dict[str, Any]]:
    if validation is None:
        return None
    if isinstance(validation, Mapping):
        return dataset(info, validation)
    if isinstance(validation, tuple) and len(validation) == 2:
        return dataset(info, *validation)
    raise TypeError("validation: expected (x, y) or a dict of placeholder name -> array")
