#!/usr/bin/python3
"""Train the digits demo's CNN once with PyTorch and write what the demo needs.

The README's main command (`make demo`, examples/digits/run.sh) compiles this
model with layerc and checks it against what this script recorded; it needs
neither torch nor scikit-learn.  This script needs both (Debian's
python3-torch and python3-sklearn, so run it with /usr/bin/python3):

    /usr/bin/python3 tools/train_digits.py            # train, write everything
    /usr/bin/python3 tools/train_digits.py --time-only OUT.json [--rounds R]
        # time PyTorch on the committed weights and test images (no sklearn,
        # no training), as examples/digits/run.sh does when torch is there

Data: scikit-learn's load_digits (1797 handwritten digits, 8x8 pixels of 0 to
16), scaled to [0, 1]; a stratified split keeps 360 images for the test.
Everything is seeded (split, initialisation, batch order) and runs on one
thread, so a rerun on the same torch gives the same weights.

Written to examples/digits/:
  digits.nn               the model in the layer language (the layer list below)
  digits.safetensors      its trained state_dict, keys as the .nn names them
  test_images.npy         float32 [360, 1, 8, 8], the held-out images as the model takes them
  test_labels.npy         int64 [360], their true digits
  pytorch_logits.npy      float32 [360, 10], PyTorch's outputs (eval mode, one batch of 360)
  pytorch_predictions.npy int64 [360], PyTorch's predicted digits (argmax of the logits)
  pytorch_reference.json  PyTorch's accuracy and its time per image (batch 1 and the whole
                          split, 1 and 2 threads), with the machine and torch version
"""

import argparse
import collections
import datetime
import json
import os
import platform
import struct
import sys
import time

import numpy as np
import torch
from torch import nn

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "digits")
SEED = 20261203
TEST_SIZE = 360
EPOCHS = 40
BATCH = 32
TIMING_ROUNDS = 15

# One source for both the PyTorch module and digits.nn: each line is `name = torch.nn call`.
LAYERS = [
    ("conv1", "Conv2d(1, 16, 3, padding=1, bias=False)"),
    ("bn1", "BatchNorm2d(16)"),
    ("relu1", "ReLU()"),
    ("conv2", "Conv2d(16, 32, 3, padding=1, bias=False)"),
    ("bn2", "BatchNorm2d(32)"),
    ("relu2", "ReLU()"),
    ("pool1", "MaxPool2d(2)"),
    ("conv3", "Conv2d(32, 64, 3, padding=1, bias=False)"),
    ("bn3", "BatchNorm2d(64)"),
    ("relu3", "ReLU()"),
    ("pool2", "MaxPool2d(2)"),
    ("flatten", "Flatten()"),
    ("dropout", "Dropout(0.2)"),
    ("fc", "Linear(256, 10)"),
]


def make_model():
    return nn.Sequential(collections.OrderedDict((name, eval("nn." + call, {"nn": nn})) for name, call in LAYERS))


def nn_source():
    width = max(len(name) for name, _ in LAYERS)
    lines = [
        "# A small CNN trained on scikit-learn's handwritten digits (8x8, 1797 samples):",
        "# written and trained by tools/train_digits.py; the weights are digits.safetensors.",
        "model Digits {",
        "    input x: f32[N, 1, 8, 8]",
    ]
    lines += [f"    {name:<{width}} = {call}" for name, call in LAYERS]
    return "\n".join(lines + ["}", ""])


def save_safetensors(state, path):
    """The format of the README's "From PyTorch to C": F32 tensors, I64 num_batches_tracked."""
    header, blobs, offset = {}, [], 0
    for key in sorted(state):
        t = state[key].detach().contiguous().cpu()
        if t.dtype == torch.int64:
            data, dtype = t.numpy().astype("<i8").tobytes(), "I64"
        else:
            data, dtype = t.numpy().astype("<f4").tobytes(), "F32"
        header[key] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    state = {}
    for key, info in header.items():
        begin, end = info["data_offsets"]
        dtype = {"F32": "<f4", "I64": "<i8"}[info["dtype"]]
        array = np.frombuffer(raw[8 + size + begin : 8 + size + end], dtype=dtype).reshape(info["shape"])
        state[key] = torch.from_numpy(array.copy())
    return state


def load_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = digits.target.astype(np.int64)
    return train_test_split(images, labels, test_size=TEST_SIZE, stratify=labels, random_state=SEED)


def train(model, images, labels):
    generator = torch.Generator().manual_seed(SEED + 1)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, EPOCHS)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(EPOCHS):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for start in range(0, len(x), BATCH):
            batch = order[start : start + BATCH]
            optimizer.zero_grad()
            loss = loss_fn(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        schedule.step()
        if epoch % 10 == 9 or epoch == EPOCHS - 1:
            print(f"epoch {epoch + 1}: training loss {total / len(x):.4f}")


def median_ms_per_image(run, images, rounds):
    """Median over rounds of one round's time (every image once) divided by the image count."""
    run()  # warm-up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000.0 / len(images)


def time_pytorch(model, images, rounds=TIMING_ROUNDS):
    model.eval()
    x = torch.from_numpy(images)
    singles = [x[i : i + 1] for i in range(len(x))]
    result = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        with torch.inference_mode():
            def one_by_one():
                for s in singles:
                    model(s)

            result[f"batch1_threads{threads}"] = median_ms_per_image(one_by_one, images, rounds)
            result[f"whole_split_threads{threads}"] = median_ms_per_image(lambda: model(x), images, rounds)
    torch.set_num_threads(1)
    return result


def machine():
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def timing_record(model, images, rounds=TIMING_ROUNDS):
    return {
        "machine": machine(),
        "torch": torch.__version__,
        "date": datetime.date.today().isoformat(),
        "rule": f"median of {rounds} rounds over the {len(images)} test images, eval mode, "
        "torch.inference_mode(); batch1: one image a call, whole_split: one call",
        "ms_per_image": time_pytorch(model, images, rounds),
    }


def time_only(path, rounds):
    model = make_model()
    model.load_state_dict(load_safetensors(os.path.join(OUT_DIR, "digits.safetensors")))
    images = np.load(os.path.join(OUT_DIR, "test_images.npy"))
    with open(path, "w") as f:
        json.dump(timing_record(model, images, rounds), f, indent=1)
        f.write("\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--time-only", metavar="OUT.json", help="only time PyTorch on the committed model")
    parser.add_argument("--rounds", type=int, default=TIMING_ROUNDS, help="timing rounds for --time-only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.time_only:
        time_only(args.time_only, max(1, args.rounds))
        return

    torch.manual_seed(SEED)
    train_x, test_x, train_y, test_y = load_split()
    model = make_model()
    train(model, train_x, train_y)
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(test_x)).numpy().astype(np.float32)
    predictions = logits.argmax(axis=1).astype(np.int64)
    top2 = np.sort(logits, axis=1)[:, -2:]
    accuracy = float((predictions == test_y).mean())
    print(f"test accuracy {accuracy * 100:.2f}% ({int((predictions == test_y).sum())} of {len(test_y)}), "
          f"smallest top-1 margin {float((top2[:, 1] - top2[:, 0]).min()):.4f}")

    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, "digits.nn"), "w") as f:
        f.write(nn_source())
    save_safetensors(model.state_dict(), os.path.join(OUT_DIR, "digits.safetensors"))
    np.save(os.path.join(OUT_DIR, "test_images.npy"), test_x)
    np.save(os.path.join(OUT_DIR, "test_labels.npy"), test_y)
    np.save(os.path.join(OUT_DIR, "pytorch_logits.npy"), logits)
    np.save(os.path.join(OUT_DIR, "pytorch_predictions.npy"), predictions)
    record = {"test_images": len(test_y), "accuracy": accuracy, "train_images": len(train_y), "seed": SEED}
    record.update(timing_record(model, test_x))
    with open(os.path.join(OUT_DIR, "pytorch_reference.json"), "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    print(json.dumps(record["ms_per_image"], indent=1))


if __name__ == "__main__":
    sys.exit(main())
