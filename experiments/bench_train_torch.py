#!/usr/bin/env python3
"""The PyTorch side of experiments/bench_train.sh: the same nets, data, normalization, batch,
solver and thread count as experiments/bench_train/{mlp,cnn}.json, timed the same way (training
steps only; the last partial batch dropped, as hpo train does). Prints one JSON line, which also
says what the peer ran on: torch version, intra-op threads, and the BLAS library this process
actually loaded (Debian's torch links the generic libblas.so.3, so the BLAS is whichever
alternative is selected: OpenBLAS with libopenblas0-pthread installed, else the slow reference
BLAS, which no PyTorch user runs on purpose)."""
import argparse
import ctypes
import gzip
import json
import os
import re
import struct
import time

import numpy as np
import torch
import torch.nn as nn


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 0x803:
        r, c = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, 1, r, c)
    return np.frombuffer(data, np.uint8, offset=8)


def loaded_blas():
    """(kind, path, threads) of the BLAS mapped into this process; call after a matmul."""
    paths = set()
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 6 and "blas" in os.path.basename(fields[5]).lower():
                paths.add(os.path.realpath(fields[5]))
    kind, found, threads = "none found", "", None
    for path in sorted(paths):
        low = path.lower()
        if "openblas" in low:
            kind, found = "OpenBLAS", path
            try:
                threads = ctypes.CDLL(path).openblas_get_num_threads()
            except (OSError, AttributeError):
                pass
            break
        if "blis" in low or "mkl" in low or "atlas" in low:
            kind, found = os.path.basename(os.path.dirname(path)) or path, path
        elif "/blas/" in low and kind == "none found":
            kind, found = "reference", path
    return kind, found, threads


def peer_config():
    kind, path, blas_threads = loaded_blas()
    build = torch.__config__.show()
    blas_info = " ".join(re.findall(r"\b(?:BLAS|LAPACK)_INFO=[^,\s]*", build)) or "?"
    parallel = [line.strip() for line in torch.__config__.parallel_info().splitlines()
                if line.strip().startswith(("at::get_num_threads", "ATen parallel backend",
                                            "MKL", "MKLDNN", "OpenMP"))]
    return {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(), "blas": kind,
            "blas_library": path, "blas_threads": blas_threads, "built_with": blas_info,
            "mkldnn": torch.backends.mkldnn.is_available(), "parallel_info": parallel}


def model(kind):
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256),
                             nn.ReLU(), nn.Linear(256, 10))
    return nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["mlp", "cnn"], required=True)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--train-limit", type=int, default=0, help="first N training images; 0 = all")
    ap.add_argument("--config-only", action="store_true",
                    help="print only what the peer runs on (torch, threads, BLAS) and exit")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.config_only:
        torch.ones(64, 64) @ torch.ones(64, 64)  # loads the BLAS
        print(json.dumps(peer_config()))
        return
    torch.manual_seed(1)
    dev = torch.device(args.device)
    xtr = read_idx(f"{args.data}/train-images-idx3-ubyte.gz").astype(np.float32) / 255
    ytr = read_idx(f"{args.data}/train-labels-idx1-ubyte.gz").astype(np.int64)
    xte = read_idx(f"{args.data}/t10k-images-idx3-ubyte.gz").astype(np.float32) / 255
    yte = read_idx(f"{args.data}/t10k-labels-idx1-ubyte.gz").astype(np.int64)
    if args.train_limit > 0:
        xtr, ytr = xtr[:args.train_limit], ytr[:args.train_limit]
    mean, sd = xtr.mean(), xtr.std()  # as hpo's data.normalize: one mean/sd of the train set
    xtr, xte = (xtr - mean) / sd, (xte - mean) / sd
    xtr, ytr = torch.from_numpy(xtr).to(dev), torch.from_numpy(ytr).to(dev)
    xte, yte = torch.from_numpy(xte).to(dev), torch.from_numpy(yte).to(dev)
    net = model(args.model).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    n, B = xtr.shape[0], args.batch
    steps = n // B
    trained, seconds = 0, 0.0
    for _ in range(args.epochs):
        perm = torch.randperm(n, device=dev)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        net.train()
        for s in range(steps):
            idx = perm[s * B:(s + 1) * B]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - t0
        trained += steps * B
    net.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, xte.shape[0], 1000):
            correct += (net(xte[s:s + 1000]).argmax(1) == yte[s:s + 1000]).sum().item()
    print(json.dumps({"model": args.model, "samples_per_sec": trained / seconds,
                      "test_accuracy": correct / xte.shape[0], "train_seconds": seconds,
                      **peer_config()}))


if __name__ == "__main__":
    main()
