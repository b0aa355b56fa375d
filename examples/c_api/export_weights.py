"""export_weights.py - the PyTorch side of examples/c_api: exports the CIFAR-10
net of ../cifar10.nn as cifar10.safetensors, plus a sample batch for the C
program (input.f32, raw float32), and the same batch and PyTorch's output as
input.npy / expected.npy for `layerc test --expect`.

Run with Debian's python3-torch: /usr/bin/python3 export_weights.py
The net is untrained (torch.manual_seed(0)): the point is that layerc computes
exactly what PyTorch computes, whatever the weights.
"""
import json
import struct
from collections import OrderedDict

import numpy as np
import torch
from torch import nn


def save_safetensors(state, path):
    """The safetensors format: u64 LE header length, JSON header, raw LE data."""
    header, blobs, offset = {}, [], 0
    for key, t in state.items():
        data = t.detach().contiguous().numpy().astype("<f4").tobytes()
        header[key] = {"dtype": "F32", "shape": list(t.shape),
                       "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)  # keep the data 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


torch.manual_seed(0)
# Layer names as in ../cifar10.nn: they become the state_dict keys (conv1.weight, ...).
net = nn.Sequential(OrderedDict([
    ("conv1", nn.Conv2d(3, 32, 5, padding=2)),
    ("pool1", nn.MaxPool2d(2)),
    ("conv2", nn.Conv2d(32, 32, 5, padding=2)),
    ("pool2", nn.MaxPool2d(2)),
    ("conv3", nn.Conv2d(32, 64, 5, padding=2)),
    ("pool3", nn.MaxPool2d(2)),
    ("6", nn.Flatten()),  # unnamed in the .nn file: its position
    ("fc1", nn.Linear(1024, 64)),
    ("fc2", nn.Linear(64, 10)),
])).eval()

x = torch.randn(4, 3, 32, 32)
with torch.no_grad():
    y = net(x)

save_safetensors(net.state_dict(), "cifar10.safetensors")
x.numpy().tofile("input.f32")  # what main.c reads: 4 samples of 3*32*32 floats
np.save("input.npy", x.numpy())
np.save("expected.npy", y.numpy())
print("PyTorch top classes:", " ".join(str(int(c)) for c in y.argmax(1)))
