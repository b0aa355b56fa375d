#!/usr/bin/python3
"""Generate PyTorch reference ("golden") outputs for layerc's graph form.

The cases of gen_output_goldens.py are layer stacks, built in PyTorch from
their model.nn text.  A model with a forward section (residual adds,
broadcasting, cat, Bilinear, blocks, torchvision's ResNet-18 and
MobileNetV2) cannot be built that way, so each case here is an nn.Module
written in Python next to its .nn text.  Every case is written as
``tests/golden/outputs/<case>/`` in the format of gen_output_goldens.py
(model.nn, weights.safetensors, input.npy, expected.npy, case.json), and the
golden, winograd, passes and targets suites of tests/run.sh run it as any
other case.  case.json also says "generator": "gen_graph_goldens.py", which
gen_output_goldens.py skips.

Run it with Debian's interpreter (it has torch 1.13 and torchvision 0.14):

    /usr/bin/python3 tools/gen_graph_goldens.py               # every case and key list
    /usr/bin/python3 tools/gen_graph_goldens.py graph_cat_two # just these
    /usr/bin/python3 tools/gen_graph_goldens.py --check       # regenerate in
        memory and compare with the files on disk byte for byte (exit 1 if not
        identical); writes nothing
    /usr/bin/python3 tools/gen_graph_goldens.py --full-size DIR
        writes full-size resnet18 and mobilenet_v2 cases (examples/*.nn, one
        224x224 sample, ~60 MB of weights) under DIR, for a one-off
        `layerc test ... --batch 1`; never into the repository

How a case is generated (deterministic: regenerating gives identical bytes):
  1. seed = crc32 of the case name; torch.manual_seed(seed) and the case's
     module is built (PyTorch's or torchvision's default initialisation),
     eval() mode.
  2. The input: torch.randn from a torch.Generator seeded with seed + 1 (times
     a per-case scale, e.g. x12 where ReLU6 must clip), batch 2.
  3. Constant-initialised state is perturbed (generator seed + 2) by
     gen_output_goldens.perturb(): BatchNorm running_mean ~ U(-0.5, 0.5),
     running_var ~ U(0.5, 2), weight ~ U(0.5, 1.5), bias ~ U(-0.5, 0.5); then
     every Conv2d, Linear or Bilinear bias that is all zeros (torchvision
     initialises MobileNetV2's classifier so) ~ U(-0.2, 0.2).  The deeper
     cases ("calibrate") then measure their BatchNorms' running_mean and
     running_var on 32 random inputs (train mode, the perturbed weight and
     bias in place) and scale each variance by U(0.5, 2): with statistics
     unrelated to the activations the signal fades layer after layer, and
     MobileNetV2 at width 0.25 gave the same output, to 1e-7, for any input.
     A case whose output moves by less than 100 x atol when the input is
     redrawn is refused (it would hardly test anything).
  4. The output under torch.no_grad(), in float32 and with the model and
     input in float64: they must agree within a tenth of the case's
     tolerance (PyTorch's own float32 error).  expected.npy is the float64
     output rounded to float32, so that it does not depend on the float32
     kernels PyTorch picks for this CPU (the expected.npy of some
     gen_output_goldens.py cases differ in their last bits from one machine
     to another).  The files are read back (gen_output_goldens.verify()).
  5. When ./layerc is built, `layerc shapes -O0 --format json model.nn` must
     list exactly the state_dict's keys and shapes and the output's shape
     (so no tensor of the weights file goes unused); without it this check
     is skipped with a warning.

The key lists tests/golden/torchvision/<model>.keys.json hold the full-size
torchvision.models.resnet18() and mobilenet_v2() state_dict keys in order,
each with its shape and safetensors dtype; suite torchvision-keys of
tests/run.sh compares them with `layerc shapes` of examples/<model>.nn.
"""

import argparse
import copy
import json
import os
import re
import subprocess
import sys
import tempfile
import warnings
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.dont_write_bytecode = True   # no tools/__pycache__ from the import below
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_output_goldens import (CASES_DIR, DEFAULT_ATOL, DEFAULT_RTOL, CaseError,  # noqa: E402
                                npy_bytes, perturb, safetensors_bytes, verify)

import torchvision  # noqa: E402
from torchvision.models import mobilenetv2 as tv_mobilenetv2  # noqa: E402
from torchvision.models import resnet as tv_resnet  # noqa: E402
from torchvision.models.googlenet import BasicConv2d, Inception  # noqa: E402
from torchvision.ops import SqueezeExcitation  # noqa: E402
from torchvision.ops.misc import Conv2dNormActivation  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS_DIR = os.path.join(ROOT, "tests", "golden", "torchvision")
LAYERC = os.path.join(ROOT, "layerc")
GENERATOR = "gen_graph_goldens.py"
BATCH = 2
ST_DTYPE = {torch.float32: "F32", torch.int64: "I64"}

CASES = {}


INPUT_RE = re.compile(r"^    input \w+: f32\[([^\]]*)\]$", re.M)


def case(name, nn_text, scale=1.0, atol=DEFAULT_ATOL, rtol=DEFAULT_RTOL, comment=None, calibrate=False):
    """Register the decorated function (it returns the case's nn.Module) as a
    case; the input's shape is model.nn's, with batch 2 for a named batch."""
    found = INPUT_RE.findall(nn_text)
    if len(found) != 1:
        raise CaseError("%s: model.nn must have one f32 input" % name)
    shape = [BATCH if d.strip().isidentifier() else int(d) for d in found[0].split(",")]

    def register(build):
        CASES[name] = dict(name=name, nn=nn_text.lstrip("\n"), build=build, shape=shape,
                           scale=scale, atol=atol, rtol=rtol, comment=comment, calibrate=calibrate)
        return build
    return register


# ------------------------------------------------------------ shared .nn text

# torchvision.models.resnet.BasicBlock, as examples/resnet18.nn writes it.
BASIC_BLOCK = """
block BasicBlock(inplanes, planes, stride=1, downsample=False) {
    conv1 = Conv2d(inplanes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
    bn1 = BatchNorm2d(planes)
    relu = ReLU(inplace=True)
    conv2 = Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
    bn2 = BatchNorm2d(planes)
    if downsample {
        downsample = Sequential(
            Conv2d(inplanes, planes, kernel_size=1, stride=stride, bias=False),
            BatchNorm2d(planes),
        )
    }

    forward(x) {
        identity = x
        out = relu(bn1(conv1(x)))
        out = bn2(conv2(out))
        if downsample {
            identity = downsample(x)
        }
        out = out + identity
        return relu(out)
    }
}
"""


def basic_block(inplanes, planes, stride=1):
    """torchvision's BasicBlock, with its downsample when the shape changes."""
    downsample = None
    if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(tv_resnet.conv1x1(inplanes, planes, stride), nn.BatchNorm2d(planes))
    return tv_resnet.BasicBlock(inplanes, planes, stride, downsample)


# torchvision.ops.Conv2dNormActivation with BatchNorm2d and ReLU6, as examples/mobilenet_v2.nn writes it.
CONV_BN_RELU6 = """
block ConvBNReLU6(in_planes, out_planes, kernel_size=3, stride=1, groups=1, padding=1) {
    Conv2d(in_planes, out_planes, kernel_size, stride, padding, groups=groups, bias=False)
    BatchNorm2d(out_planes)
    ReLU6(inplace=True)
}
"""


def conv_bn_relu6(inp, oup, kernel_size=3, stride=1, groups=1):
    return Conv2dNormActivation(inp, oup, kernel_size, stride, groups=groups,
                                norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU6)


# ------------------------------------------------------------ residual adds

@case("graph_residual_identity", BASIC_BLOCK + """
# A stem, then two torchvision BasicBlocks with the identity skip:
# Conv2d(bias=False) + BN + add + ReLU, the skip an intermediate tensor.
model ResidualIdentity {
    input x: f32[N, 3, 6, 6]
    conv1 = Conv2d(3, 8, kernel_size=3, padding=1, bias=False)
    bn1 = BatchNorm2d(8)
    layer1 = Sequential(BasicBlock(8, 8), BasicBlock(8, 8))

    forward(x) {
        x = relu(bn1(conv1(x)))
        return layer1(x)
    }
}
""")
def _residual_identity():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(8)
            self.layer1 = nn.Sequential(basic_block(8, 8), basic_block(8, 8))

        def forward(self, x):
            return self.layer1(F.relu(self.bn1(self.conv1(x))))
    return M()


@case("graph_residual_downsample", BASIC_BLOCK + """
# torchvision BasicBlocks whose skip is the 1x1 stride-2 projection
# (downsample: Conv2d + BN) on an odd size (7x7 -> 4x4), then one whose skip
# is a 1x1 stride-1 projection (a width change only).
model ResidualDownsample {
    input x: f32[N, 3, 7, 7]
    conv1 = Conv2d(3, 8, kernel_size=3, padding=1, bias=False)
    bn1 = BatchNorm2d(8)
    layer1 = Sequential(
        BasicBlock(8, 16, stride=2, downsample=True),
        BasicBlock(16, 12, downsample=True),
    )

    forward(x) {
        x = relu(bn1(conv1(x)))
        return layer1(x)
    }
}
""", calibrate=True)
def _residual_downsample():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(8)
            self.layer1 = nn.Sequential(basic_block(8, 16, 2), basic_block(16, 12))

        def forward(self, x):
            return self.layer1(F.relu(self.bn1(self.conv1(x))))
    return M()


@case("graph_residual_skip_twice", """
# The block's input is the skip of two adds (and the first conv's input):
# it must stay intact until the second add.
block TwoSkips(c) {
    conv1 = Conv2d(c, c, 3, padding=1, bias=False)
    bn1 = BatchNorm2d(c)
    conv2 = Conv2d(c, c, 3, padding=1, bias=False)
    bn2 = BatchNorm2d(c)

    forward(x) {
        a = relu(bn1(conv1(x)) + x)
        return relu(bn2(conv2(a)) + x)
    }
}

model SkipTwice {
    input x: f32[N, 3, 6, 6]
    stem = Conv2d(3, 8, 3, padding=1)
    body = TwoSkips(8)

    forward(x) {
        return body(relu(stem(x)))
    }
}
""")
def _residual_skip_twice():
    class TwoSkips(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c)

        def forward(self, x):
            a = F.relu(self.bn1(self.conv1(x)) + x)
            return F.relu(self.bn2(self.conv2(a)) + x)

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, padding=1)
            self.body = TwoSkips(8)

        def forward(self, x):
            return self.body(F.relu(self.stem(x)))
    return M()


@case("graph_residual_model_input", """
# The skip is the model's input (the caller's buffer, which the add must not
# overwrite); the output is the add's ReLU.
model ResidualModelInput {
    input x: f32[N, 8, 5, 5]
    conv1 = Conv2d(8, 8, 3, padding=1, bias=False)
    bn1 = BatchNorm2d(8)
    conv2 = Conv2d(8, 8, 3, padding=1, bias=False)
    bn2 = BatchNorm2d(8)

    forward(x) {
        out = relu(bn1(conv1(x)))
        return relu(bn2(conv2(out)) + x)
    }
}
""")
def _residual_model_input():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(8)
            self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(8)

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            return F.relu(self.bn2(self.conv2(out)) + x)
    return M()


@case("graph_residual_conv_bias", """
# Conv2d with a bias and no BatchNorm, the add written skip first, no ReLU
# after it (the add is the output).
model ResidualConvBias {
    input x: f32[N, 6, 5, 5]
    stem = Conv2d(6, 12, 1)
    conv1 = Conv2d(12, 12, 3, padding=1)
    conv2 = Conv2d(12, 12, 3, padding=1)

    forward(x) {
        s = stem(x)
        return s + conv2(relu(conv1(s)))
    }
}
""")
def _residual_conv_bias():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(6, 12, 1)
            self.conv1 = nn.Conv2d(12, 12, 3, padding=1)
            self.conv2 = nn.Conv2d(12, 12, 3, padding=1)

        def forward(self, x):
            s = self.stem(x)
            return s + self.conv2(F.relu(self.conv1(s)))
    return M()


@case("graph_residual_channels", """
# The residual add fused into convolutions that run vectorised over output
# channels (lower_conv_channels.c; 32 channels, 288 multiply-adds an output):
# a dilated 3x3 on a 20x20 plane (tiles within rows, two border rows a side;
# not Winograd: dilation 2), then a 3x3 on the pooled 6x6 plane (unrolled
# whole; too small for Winograd), each adding its skip tensor before the ReLU.
model ResidualChannels {
    input x: f32[N, 16, 20, 20]
    stem = Conv2d(16, 32, 1)
    conv1 = Conv2d(32, 32, 3, padding=2, dilation=2, bias=False)
    bn1 = BatchNorm2d(32)
    pool = MaxPool2d(3)
    conv2 = Conv2d(32, 32, 3, padding=1)

    forward(x) {
        s = relu(stem(x))
        y = relu(bn1(conv1(s)) + s)
        p = pool(y)
        return relu(conv2(p) + p)
    }
}
""")
def _residual_channels():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(16, 32, 1)
            self.conv1 = nn.Conv2d(32, 32, 3, padding=2, dilation=2, bias=False)
            self.bn1 = nn.BatchNorm2d(32)
            self.pool = nn.MaxPool2d(3)
            self.conv2 = nn.Conv2d(32, 32, 3, padding=1)

        def forward(self, x):
            s = F.relu(self.stem(x))
            y = F.relu(self.bn1(self.conv1(s)) + s)
            p = self.pool(y)
            return F.relu(self.conv2(p) + p)
    return M()


@case("graph_residual_reads_skip", """
# The conv that absorbs the add reads the skip tensor itself, whose last use
# this is (and not the output): its output must not be written over its input.
model ResidualReadsSkip {
    input x: f32[N, 4, 6, 6]
    stem = Conv2d(4, 8, 1)
    conv = Conv2d(8, 8, 3, padding=1, bias=False)
    bn = BatchNorm2d(8)
    head = Conv2d(8, 4, 1)

    forward(x) {
        y = relu(stem(x))
        z = relu(bn(conv(y)) + y)
        return head(z)
    }
}
""")
def _residual_reads_skip():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(4, 8, 1)
            self.conv = nn.Conv2d(8, 8, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(8)
            self.head = nn.Conv2d(8, 4, 1)

        def forward(self, x):
            y = F.relu(self.stem(x))
            return self.head(F.relu(self.bn(self.conv(y)) + y))
    return M()


@case("graph_residual_unfused", """
# Adds that no Conv2d can absorb: a ReLU between the conv and the add, both
# operands pooled (max and average), and a conv output that has a second user.
model ResidualUnfused {
    input x: f32[N, 8, 6, 6]
    conv1 = Conv2d(8, 8, 3, padding=1)
    conv2 = Conv2d(8, 8, 3, padding=1)
    conv3 = Conv2d(8, 8, 1)

    forward(x) {
        a = relu(conv1(x)) + x
        b = max_pool2d(conv2(a), 2) + avg_pool2d(a, 2)
        c = conv3(b)
        return c + sigmoid(c)
    }
}
""")
def _residual_unfused():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(8, 8, 3, padding=1)
            self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
            self.conv3 = nn.Conv2d(8, 8, 1)

        def forward(self, x):
            a = F.relu(self.conv1(x)) + x
            b = F.max_pool2d(self.conv2(a), 2) + F.avg_pool2d(a, 2)
            c = self.conv3(b)
            return c + torch.sigmoid(c)
    return M()


@case("graph_residual_winograd", BASIC_BLOCK + """
# 3x3 stride-1 convolutions of 32 channels at 16x16: the cost rule runs them
# as Winograd (with the fused BN, residual add and ReLU).
model ResidualWinograd {
    input x: f32[N, 8, 16, 16]
    conv1 = Conv2d(8, 32, kernel_size=1, bias=False)
    bn1 = BatchNorm2d(32)
    layer1 = Sequential(BasicBlock(32, 32), BasicBlock(32, 32))

    forward(x) {
        x = relu(bn1(conv1(x)))
        return layer1(x)
    }
}
""")
def _residual_winograd():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(8, 32, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(32)
            self.layer1 = nn.Sequential(basic_block(32, 32), basic_block(32, 32))

        def forward(self, x):
            return self.layer1(F.relu(self.bn1(self.conv1(x))))
    return M()


# ------------------------------------------------------------ broadcasting

@case("graph_squeeze_excite", """
# torchvision.ops.SqueezeExcitation: [N, C, 1, 1] * [N, C, H, W] (the scale
# on the left), then a residual add of the block's input (SE-ResNet style).
block SqueezeExcitation(input_channels, squeeze_channels) {
    avgpool = AdaptiveAvgPool2d(1)
    fc1 = Conv2d(input_channels, squeeze_channels, 1)
    fc2 = Conv2d(squeeze_channels, input_channels, 1)
    activation = ReLU()
    scale_activation = Sigmoid()

    forward(x) {
        scale = scale_activation(fc2(activation(fc1(avgpool(x)))))
        return scale * x
    }
}

model SqueezeExcite {
    input x: f32[N, 8, 6, 6]
    conv = Conv2d(8, 8, 3, padding=1, bias=False)
    bn = BatchNorm2d(8)
    se = SqueezeExcitation(8, 4)

    forward(x) {
        return se(bn(conv(x))) + x
    }
}
""", scale=2.0)
def _squeeze_excite():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(8, 8, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(8)
            self.se = SqueezeExcitation(8, 4)

        def forward(self, x):
            return self.se(self.bn(self.conv(x))) + x
    return M()


@case("graph_broadcast_add", """
# Broadcasting against a kept dimension of size 1, on a non-square image:
# [N, C, H, W] + [N, 1, H, W], [N, C, H, 1] + [N, C, H, W],
# [N, C, H, W] * [N, C, 1, W], [N, C, H, W] + [N, C, 1, 1].
model BroadcastAdd {
    input x: f32[N, 6, 5, 7]
    conv = Conv2d(6, 6, 3, padding=1)

    forward(x) {
        y = conv(x)
        a = y + mean(y, 1, keepdim=True)
        b = mean(a, 3, keepdim=True) + a
        c = b * mean(x, 2, keepdim=True)
        return c + adaptive_avg_pool2d(b, (1, 1))
    }
}
""")
def _broadcast_add():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(6, 6, 3, padding=1)

        def forward(self, x):
            y = self.conv(x)
            a = y + y.mean(1, keepdim=True)
            b = a.mean(3, keepdim=True) + a
            c = b * x.mean(2, keepdim=True)
            return c + F.adaptive_avg_pool2d(b, (1, 1))
    return M()


@case("graph_broadcast_rank", """
# Broadcasting against fewer dimensions (a fixed batch of 2, so that dim 0 can
# be reduced): [2, C, H, W] + [C, H, W], then [H, W] * [2, C, H, W].
model BroadcastRank {
    input x: f32[2, 4, 5, 6]
    conv = Conv2d(4, 4, 3, padding=1)

    forward(x) {
        y = conv(x)
        a = y + mean(y, 0)
        r = mean(mean(a, 0), 0)
        return r * a
    }
}
""")
def _broadcast_rank():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            y = self.conv(x)
            a = y + y.mean(0)
            r = a.mean(0).mean(0)
            return r * a
    return M()


@case("graph_mul_branches", """
# The product of two branches of the same shape (a gated unit), then a 1x1
# conv whose output is multiplied by the gate again (a mul, which no conv absorbs).
model MulBranches {
    input x: f32[N, 4, 5, 5]
    conv_a = Conv2d(4, 6, 3, padding=1, bias=False)
    bn_a = BatchNorm2d(6)
    conv_b = Conv2d(4, 6, 3, padding=1)
    out = Conv2d(6, 6, 1)

    forward(x) {
        g = sigmoid(bn_a(conv_a(x))) * tanh(conv_b(x))
        return out(g) * g
    }
}
""", scale=2.0)
def _mul_branches():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv_a = nn.Conv2d(4, 6, 3, padding=1, bias=False)
            self.bn_a = nn.BatchNorm2d(6)
            self.conv_b = nn.Conv2d(4, 6, 3, padding=1)
            self.out = nn.Conv2d(6, 6, 1)

        def forward(self, x):
            g = torch.sigmoid(self.bn_a(self.conv_a(x))) * torch.tanh(self.conv_b(x))
            return self.out(g) * g
    return M()


# ------------------------------------------------------------ cat

@case("graph_cat_two", """
# cat of two branches of different widths on dim 1 (positional), into a conv;
# then cat of that conv with the model's input (dim=1 by keyword).
model CatTwo {
    input x: f32[N, 3, 6, 6]
    conv_a = Conv2d(3, 4, 3, padding=1)
    conv_b = Conv2d(3, 6, 1, bias=False)
    conv_out = Conv2d(10, 5, 3, padding=1)

    forward(x) {
        c = cat([relu(conv_a(x)), conv_b(x)], 1)
        return cat([conv_out(c), x], dim=1)
    }
}
""")
def _cat_two():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv_a = nn.Conv2d(3, 4, 3, padding=1)
            self.conv_b = nn.Conv2d(3, 6, 1, bias=False)
            self.conv_out = nn.Conv2d(10, 5, 3, padding=1)

        def forward(self, x):
            c = torch.cat([F.relu(self.conv_a(x)), self.conv_b(x)], 1)
            return torch.cat([self.conv_out(c), x], dim=1)
    return M()


@case("graph_cat_inception", """
# torchvision.models.googlenet's Inception block: four branches (1x1; 1x1 then
# 3x3; 1x1 then 3x3; 3x3 max pool then 1x1) concatenated on dim 1.
block BasicConv2d(in_channels, out_channels, kernel_size, padding=0) {
    conv = Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=False)
    bn = BatchNorm2d(out_channels, eps=0.001)

    forward(x) {
        return relu(bn(conv(x)))
    }
}

block Inception(in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj) {
    branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
    branch2 = Sequential(
        BasicConv2d(in_channels, ch3x3red, kernel_size=1),
        BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1),
    )
    branch3 = Sequential(
        BasicConv2d(in_channels, ch5x5red, kernel_size=1),
        BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1),
    )
    branch4 = Sequential(
        MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
        BasicConv2d(in_channels, pool_proj, kernel_size=1),
    )

    forward(x) {
        return cat([branch1(x), branch2(x), branch3(x), branch4(x)], 1)
    }
}

model InceptionLike {
    input x: f32[N, 3, 6, 6]
    stem = BasicConv2d(3, 12, 3, padding=1)
    inception3a = Inception(12, 4, 6, 8, 2, 4, 4)

    forward(x) {
        return inception3a(stem(x))
    }
}
""", calibrate=True)
def _cat_inception():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = BasicConv2d(3, 12, kernel_size=3, padding=1)
            self.inception3a = Inception(12, 4, 6, 8, 2, 4, 4)

        def forward(self, x):
            return self.inception3a(self.stem(x))
    return M()


@case("graph_cat_dense", """
# DenseNet-like: cat of the input and a conv output, then of three tensors
# (the model's input among them) with a negative dim.
model DenseCat {
    input x: f32[N, 4, 5, 5]
    conv1 = Conv2d(4, 3, 3, padding=1)
    bn1 = BatchNorm2d(7)
    conv2 = Conv2d(7, 3, 3, padding=1, bias=False)

    forward(x) {
        y1 = conv1(x)
        y2 = conv2(relu(bn1(cat([x, y1], dim=1))))
        return cat([x, y1, y2], dim=-3)
    }
}
""")
def _cat_dense():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(4, 3, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(7)
            self.conv2 = nn.Conv2d(7, 3, 3, padding=1, bias=False)

        def forward(self, x):
            y1 = self.conv1(x)
            y2 = self.conv2(F.relu(self.bn1(torch.cat([x, y1], dim=1))))
            return torch.cat([x, y1, y2], dim=-3)
    return M()


@case("graph_cat_last_dim", """
# cat on the last dimension: of two images along their width (dim=3), then
# of three feature vectors (dim=-1), one of them a Linear's input.
model CatLastDim {
    input x: f32[N, 4, 6, 5]
    conv1 = Conv2d(4, 4, 3, padding=1)
    conv2 = Conv2d(4, 4, 1)
    fc1 = Linear(16, 5)
    fc2 = Linear(16, 3, bias=False)

    forward(x) {
        a = cat([conv1(x), relu(conv2(x))], dim=3)
        h = flatten(adaptive_avg_pool2d(a, (2, 2)), 1)
        return cat([fc1(h), fc2(h), h], dim=-1)
    }
}
""")
def _cat_last_dim():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
            self.conv2 = nn.Conv2d(4, 4, 1)
            self.fc1 = nn.Linear(16, 5)
            self.fc2 = nn.Linear(16, 3, bias=False)

        def forward(self, x):
            a = torch.cat([self.conv1(x), F.relu(self.conv2(x))], dim=3)
            h = torch.flatten(F.adaptive_avg_pool2d(a, (2, 2)), 1)
            return torch.cat([self.fc1(h), self.fc2(h), h], dim=-1)
    return M()


# ------------------------------------------------------------ Bilinear

@case("graph_bilinear_bias", """
# Bilinear (with its bias) of two branches of one input.
model BilinearBias {
    input x: f32[N, 12]
    fc1 = Linear(12, 6)
    fc2 = Linear(12, 5)
    bil = Bilinear(6, 5, 4)

    forward(x) {
        return bil(fc1(x), tanh(fc2(x)))
    }
}
""")
def _bilinear_bias():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(12, 6)
            self.fc2 = nn.Linear(12, 5)
            self.bil = nn.Bilinear(6, 5, 4)

        def forward(self, x):
            return self.bil(self.fc1(x), torch.tanh(self.fc2(x)))
    return M()


@case("graph_bilinear_no_bias", """
# Bilinear without bias on 3-D tensors [N, T, F]: of a Linear's output and
# the model's input itself, then of one tensor with itself.
model BilinearNoBias {
    input x: f32[N, 3, 7]
    fc1 = Linear(7, 4, bias=False)
    bil = Bilinear(4, 7, 5, bias=False)
    bil2 = Bilinear(5, 5, 3, bias=False)

    forward(x) {
        y = bil(fc1(x), x)
        return bil2(y, y)
    }
}
""")
def _bilinear_no_bias():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(7, 4, bias=False)
            self.bil = nn.Bilinear(4, 7, 5, bias=False)
            self.bil2 = nn.Bilinear(5, 5, 3, bias=False)

        def forward(self, x):
            y = self.bil(self.fc1(x), x)
            return self.bil2(y, y)
    return M()


# ------------------------------------------------------------ blocks

@case("graph_blocks_args", """
# One block instantiated four times with different arguments: defaults,
# positional, keyword and mixed; a bool parameter chooses the activation in
# forward (if without else).
block ConvBN(cin, cout, kernel_size=3, stride=1, padding=1, act=True) {
    conv = Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
    bn = BatchNorm2d(cout)

    forward(x) {
        y = bn(conv(x))
        if act {
            return relu(y)
        }
        return y
    }
}

model BlocksArgs {
    input x: f32[N, 3, 8, 8]
    a = ConvBN(3, 8)
    b = ConvBN(8, 12, 5, 2, 2)
    c = ConvBN(12, 12, kernel_size=1, padding=0, act=False)
    d = ConvBN(cin=12, cout=6, stride=2)

    forward(x) {
        return d(c(b(a(x))))
    }
}
""", calibrate=True)
def _blocks_args():
    class ConvBN(nn.Module):
        def __init__(self, cin, cout, kernel_size=3, stride=1, padding=1, act=True):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
            self.bn = nn.BatchNorm2d(cout)
            self.act = act

        def forward(self, x):
            y = self.bn(self.conv(x))
            return F.relu(y) if self.act else y

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = ConvBN(3, 8)
            self.b = ConvBN(8, 12, 5, 2, 2)
            self.c = ConvBN(12, 12, kernel_size=1, padding=0, act=False)
            self.d = ConvBN(12, 6, stride=2)

        def forward(self, x):
            return self.d(self.c(self.b(self.a(x))))
    return M()


@case("graph_stack_blocks", """
# A block without forward (a stack: its layers are numbered 0, 1, 2), used in
# nested Sequentials and as a named submodule (keys features.1.1.0.weight, head.0.weight).
block ConvBNReLU(cin, cout, stride=1) {
    Conv2d(cin, cout, 3, stride, 1, bias=False)
    BatchNorm2d(cout)
    ReLU()
}

model StackBlocks {
    input x: f32[N, 3, 6, 6]
    features = Sequential(
        ConvBNReLU(3, 8),
        Sequential(ConvBNReLU(8, 8), Sequential(Conv2d(8, 8, 1), ReLU6())),
        ConvBNReLU(8, 16, stride=2),
    )
    head = ConvBNReLU(16, 4)
    pool = AdaptiveAvgPool2d((1, 1))
    fc = Linear(4, 3)

    forward(x) {
        return fc(flatten(pool(head(features(x))), 1))
    }
}
""", calibrate=True)
def _stack_blocks():
    def cbr(cin, cout, stride=1):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                cbr(3, 8),
                nn.Sequential(cbr(8, 8), nn.Sequential(nn.Conv2d(8, 8, 1), nn.ReLU6())),
                cbr(8, 16, stride=2),
            )
            self.head = cbr(16, 4)
            self.pool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(torch.flatten(self.pool(self.head(self.features(x))), 1))
    return M()


@case("graph_stack_model_blocks", """
# The old stack form (no forward section) made of blocks: keys 0.0.weight, 1.conv1.weight, ...
block ConvBNReLU(cin, cout, stride=1) {
    Conv2d(cin, cout, 3, stride, 1, bias=False)
    BatchNorm2d(cout)
    ReLU()
}
""" + BASIC_BLOCK + """
model StackModelBlocks {
    input x: f32[N, 3, 6, 6]
    ConvBNReLU(3, 8)
    BasicBlock(8, 8)
    ConvBNReLU(8, 8, 2)
    BasicBlock(8, 16, stride=2, downsample=True)
    Flatten()
    Linear(64, 5)
}
""", calibrate=True)
def _stack_model_blocks():
    def cbr(cin, cout, stride=1):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())
    return nn.Sequential(cbr(3, 8), basic_block(8, 8), cbr(8, 8, 2), basic_block(8, 16, 2),
                         nn.Flatten(), nn.Linear(64, 5))


@case("graph_if_else", """
# if/else on constants and parameters: in the declarations (a wide or narrow
# body, a projection only when the shape changes) and in forward (which skip).
block Stage(cin, cout, stride=1, wide=False) {
    hidden = cout * 2
    if wide {
        body = Sequential(
            Conv2d(cin, hidden, 1),
            ReLU(),
            Conv2d(hidden, cout, 3, stride=stride, padding=1),
        )
    } else {
        body = Sequential(Conv2d(cin, cout, 3, stride=stride, padding=1))
    }
    if stride != 1 or cin != cout {
        proj = Conv2d(cin, cout, 1, stride=stride)
    }

    forward(x) {
        y = body(x)
        if stride != 1 or cin != cout {
            return relu(y + proj(x))
        } else {
            return relu(y + x)
        }
    }
}

model IfElse {
    input x: f32[N, 4, 6, 6]
    s1 = Stage(4, 4)
    s2 = Stage(4, 8, stride=2, wide=True)
    s3 = Stage(8, 8, wide=True)
    s4 = Stage(8, 6)

    forward(x) {
        return s4(s3(s2(s1(x))))
    }
}
""")
def _if_else():
    class Stage(nn.Module):
        def __init__(self, cin, cout, stride=1, wide=False):
            super().__init__()
            hidden = cout * 2
            if wide:
                self.body = nn.Sequential(nn.Conv2d(cin, hidden, 1), nn.ReLU(),
                                          nn.Conv2d(hidden, cout, 3, stride=stride, padding=1))
            else:
                self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1))
            self.project = stride != 1 or cin != cout
            if self.project:
                self.proj = nn.Conv2d(cin, cout, 1, stride=stride)

        def forward(self, x):
            y = self.body(x)
            return F.relu(y + self.proj(x)) if self.project else F.relu(y + x)

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.s1 = Stage(4, 4)
            self.s2 = Stage(4, 8, stride=2, wide=True)
            self.s3 = Stage(8, 8, wide=True)
            self.s4 = Stage(8, 6)

        def forward(self, x):
            return self.s4(self.s3(self.s2(self.s1(x))))
    return M()


# ------------------------------------------------------------ depthwise

@case("graph_depthwise_s1", CONV_BN_RELU6 + """
# Depthwise 3x3 (groups = channels) + BN + ReLU6 at stride 1, between
# pointwise convs; the input is scaled (x12) so that ReLU6 clips at 6.
model DepthwiseS1 {
    input x: f32[N, 8, 7, 7]
    dw = ConvBNReLU6(8, 8, groups=8)
    pw = ConvBNReLU6(8, 16, kernel_size=1, padding=0)
    dw2 = ConvBNReLU6(16, 16, groups=16)

    forward(x) {
        return dw2(pw(dw(x)))
    }
}
""", scale=12.0)
def _depthwise_s1():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.dw = conv_bn_relu6(8, 8, groups=8)
            self.pw = conv_bn_relu6(8, 16, kernel_size=1)
            self.dw2 = conv_bn_relu6(16, 16, groups=16)

        def forward(self, x):
            return self.dw2(self.pw(self.dw(x)))
    return M()


@case("graph_depthwise_s2", CONV_BN_RELU6 + """
# Depthwise 3x3 (groups = channels) + BN + ReLU6 at stride 2 on odd and even
# sizes (7x7 -> 4x4 -> 2x2), then a linear 1x1 projection with its bias;
# the input is scaled (x12) so that ReLU6 clips at 6.
model DepthwiseS2 {
    input x: f32[N, 12, 7, 7]
    dw1 = ConvBNReLU6(12, 12, stride=2, groups=12)
    dw2 = ConvBNReLU6(12, 12, stride=2, groups=12)
    project = Conv2d(12, 6, 1)

    forward(x) {
        return project(dw2(dw1(x)))
    }
}
""", scale=12.0)
def _depthwise_s2():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.dw1 = conv_bn_relu6(12, 12, stride=2, groups=12)
            self.dw2 = conv_bn_relu6(12, 12, stride=2, groups=12)
            self.project = nn.Conv2d(12, 6, 1)

        def forward(self, x):
            return self.project(self.dw2(self.dw1(x)))
    return M()


# ------------------------------------------------------------ torchvision models

RESNET_WIDTHS = (16, 32, 64, 128)
RESNET_CLASSES = 10
# 96, not 64: under `layerc test --sanitize` the 7x7 stride-2 stem on 64x64 (a 32-wide
# output) takes about 70 s to compile, on 96x96 about 1 s (the sanitizer pass of tests/run.sh).
RESNET_SIDE = 96


class SmallResNet(tv_resnet.ResNet):
    """torchvision's ResNet-18 (its BasicBlock, _make_layer, forward and
    initialisation) with the widths of the four stages chosen."""

    def __init__(self, widths, num_classes):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = widths[0]
        self.dilation = 1
        self.groups = 1
        self.base_width = 64
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(tv_resnet.BasicBlock, widths[0], 2)
        self.layer2 = self._make_layer(tv_resnet.BasicBlock, widths[1], 2, stride=2)
        self.layer3 = self._make_layer(tv_resnet.BasicBlock, widths[2], 2, stride=2)
        self.layer4 = self._make_layer(tv_resnet.BasicBlock, widths[3], 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def substitute(text, replacements, what):
    for old, new in replacements:
        if text.count(old) != 1:
            raise CaseError("%s: expected %r once, found it %d times (was the example changed?)"
                            % (what, old, text.count(old)))
        text = text.replace(old, new)
    return text


def resnet18_small_nn():
    """examples/resnet18.nn with the widths, input and classes changed, nothing else."""
    with open(os.path.join(ROOT, "examples", "resnet18.nn")) as f:
        text = f.read()
    a, b, c, d = RESNET_WIDTHS
    text = substitute(text, [
        ("# torchvision.models.resnet18(): ResNet-18 for 224x224 ImageNet images, written\n",
         "# examples/resnet18.nn (written by tools/gen_graph_goldens.py) with widths %d, %d, %d, %d\n"
         "# instead of 64, 128, 256, 512, a 3x%dx%d input and %d classes; otherwise unchanged.\n"
         "#\n"
         "# torchvision.models.resnet18(): ResNet-18 for 224x224 ImageNet images, written\n"
         % (a, b, c, d, RESNET_SIDE, RESNET_SIDE, RESNET_CLASSES)),
        ("input x: f32[N, 3, 224, 224]", "input x: f32[N, 3, %d, %d]" % (RESNET_SIDE, RESNET_SIDE)),
        ("conv1 = Conv2d(3, 64, kernel_size=7", "conv1 = Conv2d(3, %d, kernel_size=7" % a),
        ("bn1 = BatchNorm2d(64)", "bn1 = BatchNorm2d(%d)" % a),
        ("layer1 = Sequential(BasicBlock(64, 64), BasicBlock(64, 64))",
         "layer1 = Sequential(BasicBlock(%d, %d), BasicBlock(%d, %d))" % (a, a, a, a)),
        ("layer2 = Sequential(BasicBlock(64, 128, stride=2, downsample=True), BasicBlock(128, 128))",
         "layer2 = Sequential(BasicBlock(%d, %d, stride=2, downsample=True), BasicBlock(%d, %d))" % (a, b, b, b)),
        ("layer3 = Sequential(BasicBlock(128, 256, stride=2, downsample=True), BasicBlock(256, 256))",
         "layer3 = Sequential(BasicBlock(%d, %d, stride=2, downsample=True), BasicBlock(%d, %d))" % (b, c, c, c)),
        ("layer4 = Sequential(BasicBlock(256, 512, stride=2, downsample=True), BasicBlock(512, 512))",
         "layer4 = Sequential(BasicBlock(%d, %d, stride=2, downsample=True), BasicBlock(%d, %d))" % (c, d, d, d)),
        ("fc = Linear(512, 1000)", "fc = Linear(%d, %d)" % (d, RESNET_CLASSES)),
    ], "examples/resnet18.nn")
    return text


MOBILENET_WIDTH = 0.25
MOBILENET_CLASSES = 10
# 64: the smallest input whose last stage is not 1x1 (so that every tap of its 3x3
# depthwise convolutions counts).
MOBILENET_SIDE = 64


def mobilenet_features_nn(model):
    """The `features = Sequential(...)` lines of examples/mobilenet_v2.nn for a
    torchvision MobileNetV2, read off its modules."""
    lines = []
    for i, m in enumerate(model.features):
        if isinstance(m, Conv2dNormActivation):
            conv = m[0]
            k, s = conv.kernel_size[0], conv.stride[0]
            if not (isinstance(m[1], nn.BatchNorm2d) and isinstance(m[2], nn.ReLU6) and len(m) == 3
                    and conv.groups == 1 and conv.padding[0] == (k - 1) // 2 and conv.bias is None):
                raise CaseError("mobilenet_v2: features.%d is not Conv2d + BN + ReLU6" % i)
            if k == 3 and s == 2:
                lines.append("ConvBNReLU6(%d, %d, stride=2)" % (conv.in_channels, conv.out_channels))
            elif k == 1 and s == 1:
                lines.append("ConvBNReLU6(%d, %d, kernel_size=1, padding=0)" % (conv.in_channels, conv.out_channels))
            else:
                raise CaseError("mobilenet_v2: features.%d: kernel %d stride %d" % (i, k, s))
        elif isinstance(m, tv_mobilenetv2.InvertedResidual):
            first = m.conv[0][0]
            inp = first.in_channels
            expand = len(m.conv) == 4
            hidden = first.out_channels if expand else inp
            if hidden % inp:
                raise CaseError("mobilenet_v2: features.%d: hidden %d is not a multiple of %d" % (i, hidden, inp))
            t = hidden // inp
            if expand == (t == 1) or m.use_res_connect != (m.stride == 1 and inp == m.out_channels):
                raise CaseError("mobilenet_v2: features.%d: unexpected structure" % i)
            lines.append("InvertedResidual(%d, %d, %d, %d)" % (inp, m.out_channels, m.stride, t))
        else:
            raise CaseError("mobilenet_v2: features.%d is a %s" % (i, type(m).__name__))
    return "    features = Sequential(\n" + "".join("        %s,\n" % l for l in lines) + "    )\n"


FEATURES_RE = re.compile(r"    features = Sequential\(\n(?:        .*\n)*    \)\n")


def mobilenet_v2_small_nn(model):
    """examples/mobilenet_v2.nn with the features and classifier of `model`."""
    with open(os.path.join(ROOT, "examples", "mobilenet_v2.nn")) as f:
        example = f.read()
    # The example must be what this function writes for the full-size model.
    full = torchvision.models.mobilenet_v2()
    found = FEATURES_RE.findall(example)
    if found != [mobilenet_features_nn(full)]:
        raise CaseError("examples/mobilenet_v2.nn: its features are not those of torchvision's mobilenet_v2()")
    classes = model.classifier[1].out_features
    text = substitute(example, [
        ("# torchvision.models.mobilenet_v2(): MobileNetV2 (width 1.0) for 224x224 ImageNet\n",
         "# examples/mobilenet_v2.nn (written by tools/gen_graph_goldens.py) with the channels that\n"
         "# torchvision.models.mobilenet_v2(width_mult=%g, num_classes=%d) computes and a\n"
         "# 3x%dx%d input; otherwise unchanged.\n"
         "#\n"
         "# torchvision.models.mobilenet_v2(): MobileNetV2 (width 1.0) for 224x224 ImageNet\n"
         % (MOBILENET_WIDTH, classes, MOBILENET_SIDE, MOBILENET_SIDE)),
        ("input x: f32[N, 3, 224, 224]", "input x: f32[N, 3, %d, %d]" % (MOBILENET_SIDE, MOBILENET_SIDE)),
        (found[0], mobilenet_features_nn(model)),
        ("Linear(1280, 1000)", "Linear(%d, %d)" % (model.classifier[1].in_features, classes)),
    ], "examples/mobilenet_v2.nn")
    return text


def register_torchvision_cases():
    case("resnet18_small", resnet18_small_nn(), calibrate=True)(
        lambda: SmallResNet(RESNET_WIDTHS, RESNET_CLASSES))
    # the .nn text depends on the channels torchvision computes: built once for it
    torch.manual_seed(0)
    mb = torchvision.models.mobilenet_v2(width_mult=MOBILENET_WIDTH, num_classes=MOBILENET_CLASSES)
    case("mobilenet_v2_small", mobilenet_v2_small_nn(mb), calibrate=True)(
        lambda: torchvision.models.mobilenet_v2(width_mult=MOBILENET_WIDTH, num_classes=MOBILENET_CLASSES))


# ------------------------------------------------------------ generation

def perturb_zero_biases(model, gen):
    for _, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.Bilinear)) and m.bias is not None \
                and not m.bias.detach().any():
            with torch.no_grad():
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen, dtype=torch.float64)
                             .mul(0.4).sub(0.2).to(m.bias.dtype))


def check_with_layerc(name, nn_text, state, out_shape):
    """`layerc shapes` of the .nn text lists exactly the state_dict's keys and
    shapes, and the output's shape.  Returns False when ./layerc is not built."""
    if not os.access(LAYERC, os.X_OK):
        return False
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.nn")
        with open(path, "w") as f:
            f.write(nn_text)
        r = subprocess.run([LAYERC, "shapes", "-O0", "--format", "json", path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if r.returncode != 0:
        raise CaseError("%s: layerc shapes failed:\n%s" % (name, r.stderr))
    doc = json.loads(r.stdout)
    theirs = {}
    for layer in doc["layers"]:
        for t in layer.get("state_dict", []):
            if theirs.setdefault(t["key"], t["shape"]) != t["shape"]:
                raise CaseError("%s: layerc lists %s with two shapes" % (name, t["key"]))
    ours = {k: list(v.shape) for k, v in state.items()}
    if theirs != ours:
        missing = sorted(set(ours) - set(theirs))
        extra = sorted(set(theirs) - set(ours))
        shapes = sorted(k for k in set(ours) & set(theirs) if ours[k] != theirs[k])
        raise CaseError("%s: state_dict and model.nn differ: only in PyTorch %s, only in layerc %s, shapes differ %s"
                        % (name, missing, extra, shapes))
    if len(doc["outputs"]) != 1:
        raise CaseError("%s: model.nn has %d outputs" % (name, len(doc["outputs"])))
    layer = [l for l in doc["layers"] if l["name"] == doc["outputs"][0]][-1]
    shape = [out_shape[0] if d == doc.get("batch") else d for d in layer["output_shape"]]
    if shape != list(out_shape):
        raise CaseError("%s: layerc's output shape %s, PyTorch's %s" % (name, layer["output_shape"], list(out_shape)))
    return True


def calibrate_batchnorm(model, shape, scale, gen):
    """Running statistics measured on random inputs, the variances then scaled
    by U(0.5, 2): a deep stack of BatchNorms whose statistics are unrelated to
    their inputs' loses the input's signal (MobileNetV2 at width 0.25 gives
    the same output, to 1e-7, for every input)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None                      # a cumulative average
    model.train()
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn([8] + list(shape[1:]), generator=gen) * scale)
    model.eval()
    for m in bns:
        m.momentum = 0.1
        m.num_batches_tracked.zero_()
        with torch.no_grad():
            m.running_var.mul_(torch.rand(m.running_var.shape, generator=gen, dtype=torch.float64)
                               .mul(1.5).add(0.5).to(m.running_var.dtype))


def build_case(c, seed):
    torch.manual_seed(seed)
    model = c["build"]()
    model.eval()
    x = torch.randn(c["shape"], generator=torch.Generator().manual_seed(seed + 1)) * c["scale"]
    gen = torch.Generator().manual_seed(seed + 2)
    perturb(model, gen)
    perturb_zero_biases(model, gen)
    if c.get("calibrate"):
        calibrate_batchnorm(model, c["shape"], c["scale"], gen)
    return model, x


def input_sensitivity(model, x, seed):
    """How much the output changes, relative to its spread, when the input is
    redrawn: a golden whose output hardly depends on its input tests little."""
    other = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed + 3)) * (x.std() if x.numel() > 1 else 1)
    with torch.no_grad():
        a, b = model(x), model(other)
    return float((a - b).abs().max()), float((a - b).std() / a.std().clamp_min(1e-30))


def run_case(c, full_size=False):
    """Return ({filename: bytes}, info) for one case."""
    name = c["name"]
    seed = zlib.crc32(name.encode()) & 0x7FFFFFFF
    model, x = build_case(c, seed)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        y = model(x)
    if not isinstance(y, torch.Tensor) or not y.is_floating_point():
        raise CaseError("%s: output is not a float tensor" % name)
    y = y.to(torch.float32).contiguous()
    if not torch.isfinite(y).all():
        raise CaseError("%s: non-finite output" % name)

    m64 = copy.deepcopy(model).double()
    with torch.no_grad():
        y64 = m64(x.double())
    err = (y.double() - y64).abs()
    used = float((err / (c["atol"] + c["rtol"] * y64.abs())).max())
    moved, relative = input_sensitivity(model, x, seed)
    if moved < 100 * c["atol"] and not full_size:
        raise CaseError("%s: another input moves the output by at most %.3g: it hardly depends on the input"
                        % (name, moved))
    if used > 0.1 and not full_size:
        raise CaseError("%s: PyTorch float32 vs float64 differ by %.3g (%.0f%% of the tolerance): loosen atol/rtol"
                        % (name, float(err.max()), 100 * used))
    # The golden is the float64 run rounded: which float32 kernels PyTorch
    # picks on this CPU does not show in it.
    y = y64.to(torch.float32).contiguous()

    meta = {"atol": c["atol"], "rtol": c["rtol"], "batch": int(x.shape[0]), "seed": seed,
            "generator": GENERATOR}
    if c["comment"]:
        meta["comment"] = c["comment"]
    files = {
        "model.nn": c["nn"].encode(),
        "weights.safetensors": safetensors_bytes(state),
        "input.npy": npy_bytes(x.numpy()),
        "expected.npy": npy_bytes(y.numpy()),
        "case.json": (json.dumps(meta, indent=1) + "\n").encode(),
    }
    verify(name, files, state, x, y, {})
    checked = check_with_layerc(name, c["nn"], state, y.shape)
    info = {"in": list(x.shape), "out": list(y.shape), "tensors": len(state),
            "f32_err": float(err.max()), "tol_used": used, "y_std": float(y.std()),
            "bytes": sum(len(b) for b in files.values()), "sensitivity": relative,
            "weight_bytes": len(files["weights.safetensors"]), "layerc": checked}
    return files, info


def keys_files():
    """{path: bytes} of the torchvision key lists."""
    out = {}
    for name, ctor in (("resnet18", torchvision.models.resnet18), ("mobilenet_v2", torchvision.models.mobilenet_v2)):
        torch.manual_seed(0)
        state = ctor().state_dict()
        doc = {
            "model": name,
            "source": "torchvision.models.%s().state_dict(), torchvision %s (tools/gen_graph_goldens.py)"
                      % (name, torchvision.__version__.split("a")[0].split("+")[0]),
            "example": "examples/%s.nn" % name,
        }
        keys = {k: {"shape": list(v.shape), "dtype": ST_DTYPE[v.dtype]} for k, v in state.items()}
        doc["keys"] = keys
        # one key a line
        lines = ['  %s: %s' % (json.dumps(k), json.dumps(v)) for k, v in doc.pop("keys").items()]
        head = json.dumps(doc, indent=1)[:-2]
        text = head + ',\n "keys": {\n' + ",\n".join(lines) + "\n }\n}\n"
        if json.loads(text)["keys"] != keys:
            raise CaseError("%s: the key list does not read back" % name)
        out[os.path.join(KEYS_DIR, name + ".keys.json")] = text.encode()
    return out


def full_size(out_dir):
    """Full-size torchvision models with examples/<model>.nn, one 224x224 sample."""
    for name, ctor in (("resnet18", torchvision.models.resnet18), ("mobilenet_v2", torchvision.models.mobilenet_v2)):
        with open(os.path.join(ROOT, "examples", name + ".nn")) as f:
            text = f.read()
        c = dict(name="full_" + name, nn=text, build=ctor, shape=[1, 3, 224, 224], scale=1.0,
                 atol=DEFAULT_ATOL, rtol=DEFAULT_RTOL, comment=None, calibrate=True)
        files, info = run_case(c, full_size=True)
        d = os.path.join(out_dir, name)
        os.makedirs(d, exist_ok=True)
        for fname, blob in files.items():
            with open(os.path.join(d, fname), "wb") as f:
                f.write(blob)
        print("%-20s %s -> %s  %d tensors  %.1f MB  PyTorch f32 vs f64 %.2e (%.0f%% of 1e-4 tol)  output std %.3g  "
              "input dependence %.2f  layerc keys %s"
              % (name, info["in"], info["out"], info["tensors"], info["bytes"] / 2**20,
                 info["f32_err"], 100 * info["tol_used"], info["y_std"], info["sensitivity"],
                 "match" if info["layerc"] else "not checked"))
    return 0


def main(argv):
    ap = argparse.ArgumentParser(description="Write PyTorch goldens for the graph form into tests/golden/outputs.")
    ap.add_argument("cases", nargs="*", help="case names (default: all, and the torchvision key lists)")
    ap.add_argument("--check", action="store_true", help="compare with the files on disk instead of writing")
    ap.add_argument("--full-size", metavar="DIR", help="write full-size resnet18 and mobilenet_v2 cases under DIR")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=".*weights.*")
    try:
        register_torchvision_cases()
    except CaseError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    if args.full_size:
        return full_size(args.full_size)
    names = args.cases or sorted(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print("error: unknown case(s) %s; cases: %s" % (", ".join(unknown), ", ".join(sorted(CASES))), file=sys.stderr)
        return 2
    failed = 0
    total = 0
    unchecked = []

    def emit(label, files, d):
        nonlocal failed
        if args.check:
            stale = [os.path.basename(p) for p, blob in files.items()
                     if not os.path.exists(p) or open(p, "rb").read() != blob]
            if stale:
                print("error: %s: differs from disk: %s" % (label, ", ".join(stale)), file=sys.stderr)
                failed += 1
                return False
        else:
            os.makedirs(d, exist_ok=True)
            for p, blob in files.items():
                with open(p, "wb") as f:
                    f.write(blob)
        return True

    for name in names:
        d = os.path.join(CASES_DIR, name)
        try:
            files, info = run_case(CASES[name])
        except CaseError as e:
            print("error: %s" % e, file=sys.stderr)
            failed += 1
            continue
        if not info["layerc"]:
            unchecked.append(name)
        total += info["bytes"]
        if emit(name, {os.path.join(d, k): v for k, v in files.items()}, d):
            print("%-28s %s -> %s  %3d tensors  %7.1f KB  f32 err %.1e (%4.1f%% of tol)  out std %.2f  "
                  "input dependence %.2f"
                  % (name, info["in"], info["out"], info["tensors"], info["bytes"] / 1024,
                     info["f32_err"], 100 * info["tol_used"], info["y_std"], info["sensitivity"]))
    if not args.cases:
        for path, blob in keys_files().items():
            if emit(os.path.relpath(path, ROOT), {path: blob}, KEYS_DIR):
                print("%-28s %d keys" % (os.path.relpath(path, ROOT), len(json.loads(blob)["keys"])))
    if unchecked:
        print("warning: ./layerc is not built: the keys of %d case(s) were not checked against model.nn"
              % len(unchecked), file=sys.stderr)
    print("%d cases, %d failed, %.1f KB total" % (len(names), failed, total / 1024))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
