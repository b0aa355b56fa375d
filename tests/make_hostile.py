#!/usr/bin/env python3
"""make_hostile.py DIR - writes hostile .nn inputs into DIR for tests/run.sh.

Each must make `layerc check` exit 1 with an error message: never crash,
hang, or run out of memory.  Deterministic (fixed seed), stdlib only.
"""
import os
import random
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = random.Random(1234)
head = "model M {\n    input x: f32[N, 3, 32, 32]\n"
cases = {
    "binary_garbage": bytes(rng.randrange(256) for _ in range(65536)),
    "nul_bytes": b"model M {\n input x: f32[1]\x00\x00\n ReLU()\n}\n",
    "megabyte_line": (head + "    a = Linear(" + "1, " * 350000 + "2)\n}\n").encode(),
    "megabyte_comment_then_error": (head + "# " + "x" * 1_000_000 + "\n    Foo()\n}\n").encode(),
    "deep_parens": (head + "    a = Conv2d(" + "(" * 200000 + "3" + ")" * 200000 + ", 3, 3)\n}\n").encode(),
    "deep_lists": (head + "    a = Conv2d(3, 3, " + "[" * 50000 + "\n}\n").encode(),
    "huge_dims_overflow": b"model M {\n input x: f32[4611686018427387904, 4611686018427387904, 8]\n ReLU()\n}\n",
    "huge_product": b"model M {\n input x: f32[2147483647, 2147483647, 2147483647]\n ReLU()\n}\n",
    "huge_linear": head.encode() + b"    Flatten()\n    Linear(3072, 9223372036854775807)\n}\n",
    "huge_conv_channels": head.encode() + b"    Conv2d(3, 4611686018427387904, 3)\n}\n",
    "integer_literal_overflow": head.encode() + b"    Linear(99999999999999999999999, 2)\n}\n",
    "many_errors": (head + "    Foo()\n" * 5000 + "}\n").encode(),
    "many_invalid_chars": (head + "    @@ $$ %% ^^ && ~~ ``\n" * 2000 + "}\n").encode(),
    "only_newlines": b"\n" * 100000,
    "empty": b"",
    "unterminated_string": head.encode() + b"    Conv2d(3, 3, 3, padding='same)\n}\n",
    "unclosed_model": head.encode() + b"    ReLU()\n",
    "utf8_names": head.encode() + "    卷积 = Conv2d(3, 6, 3)\n}\n".encode(),
    "huge_kernel": head.encode() + b"    Conv2d(3, 6, 9223372036854775807)\n}\n",
    "huge_dilation_pool": head.encode() + b"    MaxPool2d(4611686018427387904, dilation=4611686018427387904, padding=2)\n}\n",
    "huge_padding": head.encode() + b"    Conv2d(3, 6, 3, padding=4611686018427387904)\n}\n",
    "negative_dims": b"model M {\n input x: f32[-3, 4]\n ReLU()\n}\n",
    "rnn_overflow": b"model M {\n input x: f32[3, 2, 4]\n LSTM(4, 4611686018427387904, num_layers=1000000)\n}\n",
    # found by fuzz/fuzz_frontend: 4 gates * hidden_size overflowed int64
    "lstm_gates_overflow": b"model M {\n input x: f32[3, 2, 4]\n LSTM(4, 4611686018427387904, num_layers=0000001)\n}\n",
    "transformer_overflow": b"model M {\n input x: f32[3, 2, 4]\n TransformerEncoderLayer(4611686018427387904, 1)\n}\n",
    "same_padding_overflow": b"model M {\n input x: f32[1, 1, 8, 8]\n Conv2d(1, 1, 4611686018427387904, padding='same', dilation=4)\n}\n",
}
for name, data in cases.items():
    with open(os.path.join(out, name + ".nn"), "wb") as f:
        f.write(data)
