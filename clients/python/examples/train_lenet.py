#!/usr/bin/python3
"""Trains LeNet-5 (models/lenet5.pbtxt) on Fashion-MNIST through a backflow server.

Each epoch streams the shuffled training set through one Train call (the server reads batches
ahead while it computes), then measures test accuracy with Infer: the arg-max of the logits
against the labels.

    build/bin/backflow-server &
    PYTHONPATH=build/release/python clients/python/examples/train_lenet.py --epochs 2
    PYTHONPATH=build/release/python clients/python/examples/train_lenet.py --limit 2000

Installed (make install, or pip install clients/python), it runs from anywhere:
    python3 /usr/local/share/backflow/examples/train_lenet.py --limit 2000
The model is deleted at the end unless --keep is given.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Optional

import numpy as np

from backflow import Client, load_graph
from backflow.data import FASHION_MNIST_DIR, batches, load_fashion_mnist

_HERE = os.path.dirname(os.path.abspath(__file__))
# models/ beside examples/ when installed (PREFIX/share/backflow), else the repository's.
_GRAPH_CANDIDATES = [os.path.join(_HERE, "..", "models", "lenet5.pbtxt"),
                     os.path.join(_HERE, "..", "..", "..", "models", "lenet5.pbtxt")]
_DEFAULT_GRAPH = os.path.normpath(next((p for p in _GRAPH_CANDIDATES if os.path.isfile(p)),
                                       _GRAPH_CANDIDATES[-1]))


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=os.environ.get("BACKFLOW_SERVER", "127.0.0.1:50051"),
                        help="host:port of the server (default: $BACKFLOW_SERVER or "
                             "127.0.0.1:50051)")
    parser.add_argument("--graph", default=_DEFAULT_GRAPH)
    parser.add_argument("--keep", action="store_true", help="keep the model on the server")
    parser.add_argument("--data-dir", default=FASHION_MNIST_DIR)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64, help="training batch size")
    parser.add_argument("--lr", type=float, default=0.05, help="SGD learning rate")
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0, help="initialisation and shuffling")
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first LIMIT training and test samples (a quick run)")
    return parser.parse_args(argv)


def test_accuracy(client: Client, model_id: str, images: np.ndarray, labels: np.ndarray,
                  chunk: int = 1000) -> float:
    """Fraction of `images` whose arg-max logit is the label, inferred `chunk` at a time."""
    hits = 0
    for start in range(0, len(images), chunk):
        logits = client.infer(model_id, {"images": images[start:start + chunk]},
                              outputs=["logits"])["logits"]
        hits += int(np.sum(logits.argmax(axis=1) == labels[start:start + chunk]))
    return hits / max(len(images), 1)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    train_images, train_labels = load_fashion_mnist(args.data_dir, train=True, limit=args.limit)
    test_images, test_labels = load_fashion_mnist(args.data_dir, train=False, limit=args.limit)
    print(f"Fashion-MNIST: {len(train_images)} training, {len(test_images)} test images")

    with Client(args.server) as client:
        info = client.create_model(load_graph(args.graph), optimizer="sgd", lr=args.lr,
                                   momentum=args.momentum, seed=args.seed, name="lenet5-example")
        print(f"model {info.id}: {info.parameter_count} parameters, "
              f"{info.flops_per_sample / 1e6:.2f} MFLOP per sample")
        for epoch in range(1, args.epochs + 1):
            started = time.monotonic()
            epoch_batches = batches(train_images, train_labels, args.batch, shuffle=True,
                                    seed=args.seed + epoch)
            losses = [r.loss for r in client.train(info.id, epoch_batches)]
            seconds = time.monotonic() - started
            accuracy = test_accuracy(client, info.id, test_images, test_labels)
            print(f"epoch {epoch}: {len(losses)} steps, mean loss {np.mean(losses):.4f}, "
                  f"last loss {losses[-1]:.4f}, test accuracy {accuracy:.4f} "
                  f"({len(train_images) / seconds:.0f} samples/s)")
        if args.keep:
            print(f"kept model {info.id} on {args.server}")
        else:
            client.delete_model(info.id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
