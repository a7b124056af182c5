#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (fuzz/corpus/TARGET/) from real requests.

It starts a backflow-server (on 127.0.0.1, a free port, a fresh data directory), drives it with
the Python client (clients/python) through every RPC, on the model the RPC fuzz target serves
(fuzz/rpc_model.pbtxt), and records each request exactly as the client serialized it. From
those it writes:
  rpc/            one byte naming the RPC (service.proto's order), then the request
  graph_import/   every graph a request carried, and every graph in models/
  tensor_decode/  every tensor a request carried, and integer ones as labels are sent
  onnx_import/    the server's ONNX export of the model, and the ONNX files of tests/engine/onnx
  records/        the data directory's model.pb and checkpoint file after SaveCheckpoint, in the
                  framing of fuzz/records_fuzzer.cc (as on disk, and as payloads)
File names are the content's SHA-1 (as libFuzzer names corpus files), so rerunning it adds only
what changed. Stale seeds are not deleted; remove a directory first to regenerate it whole.

Usage (after building backflow-server and backflow_python):
  PYTHONPATH=build/release/python /usr/bin/python3 fuzz/generate_seeds.py \
      --server build/bin/backflow-server
"""

import argparse
import hashlib
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np

import backflow
from backflow.v1 import service_pb2, store_pb2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RPCS = ["CreateModel", "GetModel", "ListModels", "DeleteModel", "Infer", "ComputeGradients",
        "TrainStep", "Train", "GetParameters", "SetParameters", "SaveCheckpoint",
        "RestoreCheckpoint", "Evaluate", "CheckGradients", "ExportModel", "ListCheckpoints",
        "DeleteCheckpoint", "DownloadCheckpoint", "UploadCheckpoint"]
RECORD_ID = "fuzz-model"  # the directory fuzz/records_fuzzer.cc writes a model's files to


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_seed(out, target, data):
    directory = os.path.join(out, target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def frame(payload):
    """Note [Atomic files] in server/storage/checkpoint_store.h."""
    return b"BFLW" + struct.pack("<IQI", 1, len(payload), zlib.crc32(payload)) + payload


def unframe(data):
    assert data[:4] == b"BFLW", "not a framed record"
    return data[20:]


class Recorder:
    """Wraps a Client's _call so every request it sends is kept."""

    def __init__(self, client):
        self.requests = []
        call = client._call

        def recording_call(method, request):
            self.requests.append(request)
            return call(method, request)
        client._call = recording_call


def drive(client, recorder):
    """Every RPC the client has, on the fuzz model; returns the model id and its ONNX export."""
    graph = backflow.load_graph(os.path.join(ROOT, "fuzz", "rpc_model.pbtxt"))
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (3, 4)).astype(np.float32)
    labels = np.array([0, 1, 1], np.float32)
    info = client.create_model(graph, optimizer="adam", lr=0.01, seed=1)
    client.create_model(graph, optimizer="sgd", lr=0.1, momentum=0.9, dtype="float64",
                        initial_parameters={"b1": np.ones(3)}, name="f64")
    client.get_model(info.id)
    client.list_models()
    client.infer(info.id, {"x": x})
    client.infer(info.id, {"x": x}, outputs=["logits"])
    client.compute_gradients(info.id, {"x": x, "labels": labels})
    client.train_step(info.id, {"x": x, "labels": labels}, return_gradients=True)
    client.get_parameters(info.id)
    client.get_parameters(info.id, ["w1"])
    step = client.set_parameters(info.id, {"b2": np.array([0.5, -0.5], np.float32)})
    client.set_parameters(info.id, {"b2": np.zeros(2, np.float32)}, if_step=step)
    client.save_checkpoint(info.id)
    client.restore_checkpoint(info.id)
    client.save_checkpoint(info.id, name="best")
    client.list_checkpoints(info.id)
    client.save_checkpoint(info.id)
    client.delete_checkpoint(info.id, "best")
    client.restore_checkpoint(info.id, step=client.get_model(info.id).step)
    client.evaluate(graph, {"x": x, "labels": labels}, wrt=["w1", "x"])
    client.evaluate(graph, {"x": x.astype(np.float64)}, outputs=["logits"], mode="inference")
    client.check_gradients(graph, inputs={"x": x, "labels": labels}, batch=3)
    client.check_gradients(model_id=info.id, max_elements_per_tensor=4, worst_k=2)
    onnx = client.export_onnx(info.id)
    client.export_model(info.id)
    client.create_model_from_onnx(onnx, loss="softmax_cross_entropy", optimizer="sgd", lr=0.1)
    client.delete_model(client.create_model(graph).id)
    return info.id, onnx


def write_rpc_seeds(out, requests):
    for request in requests:
        name = type(request).__name__
        rpcs = {"TrainStepRequest": ["TrainStep", "Train"], "ModelInfo": []}.get(
            name, [name[:-len("Request")]])
        for rpc in rpcs:
            write_seed(out, "rpc", bytes([RPCS.index(rpc)]) + request.SerializeToString())


def write_transfer_seeds(out, client, model_id):
    """DownloadCheckpoint requests, and an UploadCheckpoint stream as the fuzz target takes it:
    one CheckpointChunk with the header and every byte."""
    client.save_checkpoint(model_id, name="named", replace=True)
    step = client.get_model(model_id).step
    for request in (service_pb2.DownloadCheckpointRequest(model_id=model_id),
                    service_pb2.DownloadCheckpointRequest(model_id=model_id, name="named"),
                    service_pb2.DownloadCheckpointRequest(model_id=model_id, step=step)):
        write_seed(out, "rpc", bytes([RPCS.index("DownloadCheckpoint")]) +
                   request.SerializeToString())
    checkpoint = client.download_checkpoint(model_id)
    data = b"".join(np.ascontiguousarray(a).tobytes() for a in checkpoint.arrays)
    chunk = service_pb2.CheckpointChunk(header=checkpoint.header, data=data)
    write_seed(out, "rpc", bytes([RPCS.index("UploadCheckpoint")]) + chunk.SerializeToString())


def write_graph_and_tensor_seeds(out, requests):
    for request in requests:
        if "graph" in request.DESCRIPTOR.fields_by_name and request.HasField("graph"):
            write_seed(out, "graph_import", request.graph.SerializeToString())
        for field in ("batch", "inputs", "values", "parameters", "initial_parameters"):
            descriptor = request.DESCRIPTOR.fields_by_name.get(field)
            if descriptor is not None and descriptor.message_type is not None:
                for tensor in getattr(request, field).values():
                    write_seed(out, "tensor_decode", tensor.SerializeToString())
    for name in sorted(os.listdir(os.path.join(ROOT, "models"))):
        if name.endswith(".pbtxt"):
            graph = backflow.load_graph(os.path.join(ROOT, "models", name))
            write_seed(out, "graph_import", graph.SerializeToString())
    for dtype in ("int32", "int64"):
        write_seed(out, "tensor_decode",
                   backflow.to_tensor(np.array([0, 1, 2]), dtype=dtype).SerializeToString())


def write_onnx_seeds(out, onnx):
    write_seed(out, "onnx_import", onnx)
    directory = os.path.join(ROOT, "tests", "engine", "onnx")
    for name in sorted(os.listdir(directory)):
        if name.endswith(".onnx"):
            with open(os.path.join(directory, name), "rb") as f:
                write_seed(out, "onnx_import", f.read())


def legacy_checkpoint(data):
    """The CheckpointRecord of an older server holding what a checkpoint file (Note [Checkpoint
    files] in server/storage/checkpoint_file.h) holds."""
    assert data[:4] == b"BFCK", "not a checkpoint file"
    offset, manifest, chunks = 8, None, []
    while offset < len(data):
        kind, length, _ = struct.unpack_from("<IQI", data, offset)
        payload = data[offset + 16:offset + 16 + length]
        offset += 16 + length
        if kind == 1:
            manifest = store_pb2.CheckpointManifest.FromString(payload)
        elif kind == 2:
            chunks.append(payload)
    tensors = b"".join(chunks)
    record = store_pb2.CheckpointRecord(step=manifest.step,
                                        optimizer_steps=manifest.optimizer_steps,
                                        saved_unix_ms=manifest.saved_unix_ms)
    slots = {0: record.parameters, 1: record.state, 2: record.optimizer_state}
    at = 0
    for tensor in manifest.tensors:
        target = slots[tensor.slot][tensor.name]
        target.shape.extend(tensor.dims)
        target.dtype = tensor.dtype
        target.data = tensors[at:at + tensor.bytes]
        at += tensor.bytes
    return record


def write_record_seeds(out, data_dir, model_id):
    directory = os.path.join(data_dir, "models", model_id)
    with open(os.path.join(directory, "model.pb"), "rb") as f:
        record = store_pb2.ModelRecord.FromString(unframe(f.read()))
    checkpoints = os.path.join(directory, "checkpoints")
    newest = max(name for name in os.listdir(checkpoints) if not name.startswith("."))
    with open(os.path.join(checkpoints, newest), "rb") as f:
        checkpoint_file = f.read()
    record.id = RECORD_ID
    model = record.SerializeToString()
    legacy = legacy_checkpoint(checkpoint_file).SerializeToString()
    for mode, model_bytes, checkpoint_bytes in [(0, frame(model), b""), (1, model, b""),
                                                (2, frame(model), checkpoint_file),
                                                (11, frame(model), checkpoint_file),
                                                (7, model, legacy)]:
        write_seed(out, "records",
                   bytes([mode]) + struct.pack("<I", len(model_bytes)) + model_bytes +
                   checkpoint_bytes)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="the backflow-server binary")
    parser.add_argument("--out", default=os.path.join(ROOT, "fuzz", "corpus"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        address = f"127.0.0.1:{free_port()}"
        server = subprocess.Popen([args.server, f"--listen={address}", f"--data-dir={data_dir}",
                                   "--metrics-listen=",
                                   "--log-level=warn"])
        try:
            client = backflow.Client(address, timeout=60)
            for _ in range(300):  # up to 30 s for the server to start
                try:
                    if client.health() == "SERVING":
                        break
                except backflow.BackflowError:
                    time.sleep(0.1)
            recorder = Recorder(client)
            model_id, onnx = drive(client, recorder)
            write_rpc_seeds(args.out, recorder.requests)
            write_transfer_seeds(args.out, client, model_id)
            write_graph_and_tensor_seeds(args.out, recorder.requests)
            write_onnx_seeds(args.out, onnx)
            write_record_seeds(args.out, data_dir, model_id)
            client.close()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    for target in sorted(os.listdir(args.out)):
        print(f"{target}: {len(os.listdir(os.path.join(args.out, target)))} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
