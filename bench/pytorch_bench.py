#!/usr/bin/python3
"""PyTorch (1.13, CPU) side of backflow's benchmark harness.

Times the same models, batches, loss and optimizer as backflow, step by step, and prints one
JSON object per run on stdout.

Models (as in models/*.pbtxt): mlp (mlp_tanh.pbtxt), lenet5, cifar_cnn, resnet (resnet_fmnist),
transformer (transformer_repeat; both in bench/torch_models.py) and circuit, the staged scalar
circuit f = (x + sigmoid(y)) / (sigmoid(x) + (x + y)^2) of models/seeds/staged.pbtxt
with x = 3, y = -4 as learnable parameters and f as the loss (its batch is always 1).

Data: a fixed pool of 8 synthetic batches, cycled, from a torch.Generator seeded 1 (per batch:
images uniform in [0, 1), then int64 labels uniform in 0..9; the transformer: int64 token ids
and labels uniform in 0..1, as backflow-bench draws ids and labels below the logits' width). Loss: mean softmax cross-entropy;
accuracy: the fraction of arg-max hits; optimizer: SGD, lr 0.01, momentum 0.9. Both loss and
accuracy are read back every step, as backflow returns them. Warm-up steps are not timed; the
timed steps run until both --seconds and --min-steps are reached.

Usage (Debian's /usr/bin/python3 has python3-torch; python3 on PATH may not):
    bench/pytorch_bench.py train --model lenet5 --batch 64 --seconds 2 [--threads 2]
    bench/pytorch_bench.py infer --model mlp --batch 64 --seconds 2
    bench/pytorch_bench.py check
    bench/pytorch_bench.py export-onnx --model resnet --out resnet.onnx
train and infer print {"kind", "model", "batch", "threads", "steps", "seconds", "samples_per_s",
"step_p50_us", "step_p99_us", "peak_rss_kib", "import_rss_kib", "first_loss", "torch"};
check prints the models' parameter counts and the circuit's f and gradients at (3, -4);
export-onnx writes the model (seeded 1) as ONNX the way docs/onnx.md tells users to export for
training (opset 14, open batch, training mode, no constant folding) and prints {"kind", "out"}.
"""

import argparse
import json
import math
import resource
import time


def max_rss_kib():
    """Peak resident set size of this process so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


import torch  # noqa: E402 (imported after max_rss_kib to measure its footprint alone)
from torch import nn  # noqa: E402

from torch_models import ResNetFmnist, SEQ, TransformerRepeat  # noqa: E402

IMPORT_RSS_KIB = max_rss_kib()
POOL = 8
CLASSES = 10


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.Tanh(), nn.Linear(256, 10))


def lenet5():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))


def cifar_cnn():
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(4096, 256), nn.ReLU(),
        nn.Linear(256, 10))


class Circuit(nn.Module):
    """f = (x + sigmoid(y)) / (sigmoid(x) + (x + y)^2), stage by stage as staged.pbtxt."""

    def __init__(self, x=3.0, y=-4.0):
        super().__init__()
        self.x = nn.Parameter(torch.tensor(x, dtype=torch.float32))
        self.y = nn.Parameter(torch.tensor(y, dtype=torch.float32))

    def forward(self):
        x, y = self.x, self.y
        num = x + torch.sigmoid(y)
        den = torch.sigmoid(x) + torch.square(x + y)
        return num * torch.reciprocal(den)


# name -> (constructor, input shape of one sample); the circuit takes no input; the
# transformer's input is SEQ token ids ("ids").
MODELS = {"mlp": (mlp, (1, 28, 28)), "lenet5": (lenet5, (1, 28, 28)),
          "cifar_cnn": (cifar_cnn, (3, 32, 32)), "resnet": (ResNetFmnist, (1, 28, 28)),
          "transformer": (TransformerRepeat, "ids"), "circuit": (Circuit, None)}
PARAMETER_COUNTS = ("mlp", "lenet5", "cifar_cnn", "resnet", "transformer")


def batch_pool(batch, shape):
    generator = torch.Generator().manual_seed(1)
    if shape == "ids":  # two classes: ids and labels in 0..1
        return [(torch.randint(0, 2, (batch, SEQ), generator=generator, dtype=torch.int64),
                 torch.randint(0, 2, (batch,), generator=generator, dtype=torch.int64))
                for _ in range(POOL)]
    return [(torch.rand(batch, *shape, generator=generator),
             torch.randint(0, CLASSES, (batch,), generator=generator, dtype=torch.int64))
            for _ in range(POOL)]


def make_step(kind, name, model, batch):
    """A step(i) running step i; it returns the loss when it computes one, else the logits."""
    if name == "circuit":
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def train_circuit(_):
            optimizer.zero_grad(set_to_none=True)
            f = model()
            f.backward()
            optimizer.step()
            return f.item()

        def infer_circuit(_):
            with torch.inference_mode():
                return model().item()
        return train_circuit if kind == "train" else infer_circuit

    pool = batch_pool(batch, MODELS[name][1])
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def train(i):
        images, labels = pool[i % POOL]
        optimizer.zero_grad(set_to_none=True)
        logits = model(images)
        loss = loss_fn(logits, labels)
        accuracy = (logits.argmax(1) == labels).float().mean()
        loss.backward()
        optimizer.step()
        # backflow returns loss and accuracy with every step: read both back here too.
        loss_value, _ = loss.item(), accuracy.item()
        return loss_value

    def infer(i):
        with torch.inference_mode():
            logits = model(pool[i % POOL][0])
            logits.sum().item()  # read the result back
        return logits

    def first_loss(logits):  # untimed: the loss of an inference step's logits
        with torch.inference_mode():
            return loss_fn(logits, pool[0][1]).item()
    infer.first_loss = first_loss
    return train if kind == "train" else infer


def percentile_us(sorted_seconds, p):
    """Nearest-rank percentile p (0..100) of sorted step times, in microseconds."""
    rank = max(1, math.ceil(p / 100 * len(sorted_seconds)))
    return sorted_seconds[rank - 1] * 1e6


def run(args):
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(1)
    model = MODELS[args.model][0]()
    batch = 1 if args.model == "circuit" else args.batch
    step = make_step(args.kind, args.model, model, batch)

    first_loss = None
    for i in range(args.warmup):
        out = step(i)
        if i == 0:
            first_loss = out
    times, start = [], time.perf_counter()
    while True:
        t0 = time.perf_counter()
        out = step(args.warmup + len(times))
        t1 = time.perf_counter()
        times.append(t1 - t0)
        if first_loss is None:  # no warm-up: the first timed step's loss
            first_loss = out
        if len(times) >= args.min_steps and t1 - start >= args.seconds:
            break
    elapsed = t1 - start
    if isinstance(first_loss, torch.Tensor):
        first_loss = step.first_loss(first_loss)
    times.sort()
    return {"kind": args.kind, "model": args.model, "batch": batch, "threads": args.threads,
            "steps": len(times), "seconds": elapsed,
            "samples_per_s": batch * len(times) / elapsed,
            "step_p50_us": percentile_us(times, 50), "step_p99_us": percentile_us(times, 99),
            "peak_rss_kib": max_rss_kib(), "import_rss_kib": IMPORT_RSS_KIB,
            "first_loss": first_loss, "torch": torch.__version__}


def check(_):
    torch.manual_seed(1)
    params = {name: sum(p.numel() for p in MODELS[name][0]().parameters())
              for name in PARAMETER_COUNTS}
    circuit = Circuit()
    f = circuit()
    f.backward()
    return {"kind": "check", "params": params, "circuit_first_loss": f.item(),
            "circuit_grads": [circuit.x.grad.item(), circuit.y.grad.item()]}


def export_onnx(args):
    torch.manual_seed(1)
    factory, shape = MODELS[args.model]
    model = factory()
    torch.onnx.export(model, torch.rand(2, *shape), args.out, input_names=["images"],
                      output_names=["logits"],
                      dynamic_axes={"images": {0: "N"}, "logits": {0: "N"}}, opset_version=14,
                      training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)
    return {"kind": "export-onnx", "out": args.out}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    commands = parser.add_subparsers(dest="kind", required=True)
    for kind, text in (("train", "time training steps (forward, backward, SGD update)"),
                       ("infer", "time forward passes to the logits under inference_mode")):
        sub = commands.add_parser(kind, help=text, description=text)
        sub.add_argument("--model", required=True, choices=list(MODELS), help="model to run")
        sub.add_argument("--batch", type=int, required=True,
                         help="samples per step (ignored for circuit, reported as 1)")
        sub.add_argument("--seconds", type=float, required=True,
                         help="minimum wall-clock seconds of timed steps")
        sub.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
        sub.add_argument("--threads", type=int, default=2,
                         help="torch.set_num_threads (default 2; interop threads are 1)")
        sub.add_argument("--min-steps", type=int, default=20,
                         help="minimum number of timed steps (default 20)")
        sub.set_defaults(func=run)
    sub = commands.add_parser("check", help="print parameter counts and the circuit's f, grads")
    sub.set_defaults(func=check)
    sub = commands.add_parser("export-onnx", help="write a model as ONNX, for backflow to import")
    sub.add_argument("--model", required=True, choices=["mlp", "lenet5", "cifar_cnn", "resnet"])
    sub.add_argument("--out", required=True, help="the .onnx file to write")
    sub.set_defaults(func=export_onnx)
    args = parser.parse_args()
    print(json.dumps(args.func(args)), flush=True)


if __name__ == "__main__":
    main()
