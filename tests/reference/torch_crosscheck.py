#!/usr/bin/python3
"""torch_crosscheck.py - checks the reference interpreter (compiler/reference.c)
layer by layer against PyTorch itself (Debian's python3-torch).

For each case: a one-or-few-layer model in the layer language and the same
torch.nn modules, random weights (PyTorch's default initialisation, plus
random BatchNorm statistics and LayerNorm affines), a random input; the
reference output (via crosscheck_driver) must match torch's within 1e-4
(relative to the output's largest magnitude).  Not part of `make test`: it
needs torch.

    cc -std=gnu11 -Icompiler -Ibuild tests/reference/crosscheck_driver.c compiler/reference.c \
       build/<every .o but main.o> -lcjson -lm -o /tmp/crosscheck_driver
    /usr/bin/python3 tests/reference/torch_crosscheck.py /tmp/crosscheck_driver
"""
import shutil
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import torch
import torch.nn as nn

warnings.filterwarnings('ignore')
torch.manual_seed(0)
DRIVER = sys.argv[1] if len(sys.argv) > 1 else '/tmp/crosscheck_driver'


def randomize(name, m):
    with torch.no_grad():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if m.running_mean is not None:
                m.running_mean.uniform_(-1, 1); m.running_var.uniform_(0.5, 2)
            if m.weight is not None:
                m.weight.uniform_(0.5, 1.5); m.bias.uniform_(-0.5, 0.5)
        if isinstance(m, nn.LayerNorm) and m.weight is not None:
            m.weight.uniform_(0.5, 1.5); m.bias.uniform_(-0.5, 0.5)
        if isinstance(m, nn.TransformerEncoderLayer):
            for ln in (m.norm1, m.norm2):
                ln.weight.uniform_(0.5, 1.5); ln.bias.uniform_(-0.5, 0.5)
            m.self_attn.in_proj_bias.uniform_(-0.3, 0.3); m.self_attn.out_proj.bias.uniform_(-0.3, 0.3)

def run_case(title, decl, layers, shape, batch, dtype='f32'):
    d = tempfile.mkdtemp(prefix='layerc_crosscheck_')
    try:
        return compare(title, d, decl, layers, shape, batch, dtype)
    finally:
        shutil.rmtree(d)


def compare(title, d, decl, layers, shape, batch, dtype):
    text = 'model T {\n    input x: %s\n' % decl + ''.join('    %s = %s\n' % (n, src) for n, src, _ in layers) + '}\n'
    open(d + '/m.nn', 'w').write(text)
    mods = [(n, eval('nn.' + src)) for n, src, _ in layers]
    if dtype == 'f32':
        x = torch.randn(*shape) * 2
    else:
        x = torch.randint(0, 10, shape)
    x.numpy().tofile(d + '/input.bin')
    y = x
    with torch.no_grad():
        for (n, m), (_, _, tup) in zip(mods, layers):
            randomize(n, m)
            m.eval()
            for k, v in m.state_dict().items():
                if v.dtype == torch.float32:
                    v.contiguous().numpy().tofile('%s/%s.%s.bin' % (d, n, k))
            y = m(y)
            if tup: y = y[0]
    r = subprocess.run([DRIVER, d, d + '/m.nn', str(batch)], capture_output=True, text=True)
    if r.returncode != 0:
        print('ERROR', title, r.stderr.strip()); return False
    got = np.fromfile(d + '/output.bin', dtype=np.float32)
    want = y.contiguous().numpy().reshape(-1)
    if got.shape != want.shape:
        print('SHAPE', title, got.shape, want.shape); return False
    err = float(np.max(np.abs(got - want))) if got.size else 0.0
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    ok = err <= 1e-4 * max(1.0, scale)
    print('%s %-60s max|diff| %.2e (max|y| %.2f)' % ('ok  ' if ok else 'FAIL', title, err, scale))
    return ok

C = []
def case(title, decl, layers, shape, batch=None, dtype='f32'):
    C.append((title, decl, [(l[0], l[1], l[2] if len(l) > 2 else False) for l in layers], shape, batch if batch is not None else shape[0], dtype))

case('conv stride pad', 'f32[N, 3, 7, 6]', [('l', 'Conv2d(3, 4, 3, stride=2, padding=1)')], (2, 3, 7, 6))
case('conv groups dilation asym', 'f32[1, 4, 9, 8]', [('l', 'Conv2d(4, 6, (3, 2), stride=(1, 2), padding=(2, 1), dilation=(2, 1), groups=2)')], (1, 4, 9, 8))
for m in ['zeros', 'reflect', 'replicate', 'circular']:
    case('conv same %s' % m, 'f32[2, 2, 6, 5]', [('l', "Conv2d(2, 3, (4, 3), padding='same', padding_mode='%s')" % m)], (2, 2, 6, 5))
    case('conv pad (2,1) %s stride 2' % m, 'f32[2, 2, 6, 5]', [('l', "Conv2d(2, 3, 3, stride=2, padding=(2, 1), padding_mode='%s', bias=False)" % m)], (2, 2, 6, 5))
    case('conv same dilated %s' % m, 'f32[1, 2, 7, 7]', [('l', "Conv2d(2, 2, 3, padding='same', dilation=2, padding_mode='%s')" % m)], (1, 2, 7, 7))
case('conv depthwise unbatched', 'f32[3, 5, 5]', [('l', 'Conv2d(3, 3, 3, groups=3, padding=1)')], (3, 5, 5))
case('maxpool dil ceil', 'f32[2, 3, 11, 10]', [('l', 'MaxPool2d(3, 2, 1, dilation=2, ceil_mode=True)')], (2, 3, 11, 10))
case('maxpool 2 ceil', 'f32[1, 2, 5, 7]', [('l', 'MaxPool2d(2, ceil_mode=True)')], (1, 2, 5, 7))
case('maxpool 3 2 1 ceil unbatched', 'f32[2, 6, 6]', [('l', 'MaxPool2d(3, 2, 1, ceil_mode=True)')], (2, 6, 6))
case('maxpool rect', 'f32[1, 1, 9, 8]', [('l', 'MaxPool2d((3, 2), stride=(2, 3), padding=(1, 1), ceil_mode=True)')], (1, 1, 9, 8))
for opts in ['', ', count_include_pad=False', ', divisor_override=3']:
    case('avgpool 3 2 1 ceil' + opts, 'f32[2, 2, 8, 7]', [('l', 'AvgPool2d(3, 2, 1, ceil_mode=True%s)' % opts)], (2, 2, 8, 7))
    case('avgpool rect ceil' + opts, 'f32[1, 1, 9, 8]', [('l', 'AvgPool2d((3, 2), stride=(2, 3), padding=(1, 1), ceil_mode=True%s)' % opts)], (1, 1, 9, 8))
    case('avgpool 4 3 2 ceil' + opts, 'f32[1, 1, 10, 9]', [('l', 'AvgPool2d(4, 3, 2, ceil_mode=True%s)' % opts)], (1, 1, 10, 9))
case('avgpool 2 ceil', 'f32[1, 1, 5, 5]', [('l', 'AvgPool2d(2, ceil_mode=True)')], (1, 1, 5, 5))
case('avgpool floor', 'f32[1, 2, 7, 7]', [('l', 'AvgPool2d(3, 2, 1)')], (1, 2, 7, 7))
case('adaptive (3, None)', 'f32[2, 3, 7, 5]', [('l', 'AdaptiveAvgPool2d((3, None))')], (2, 3, 7, 5))
case('adaptive 4', 'f32[1, 2, 10, 9]', [('l', 'AdaptiveAvgPool2d(4)')], (1, 2, 10, 9))
case('adaptive upsample', 'f32[1, 1, 3, 4]', [('l', 'AdaptiveAvgPool2d((5, 7))')], (1, 1, 3, 4))
for a in ['ReLU()', 'ReLU6()', 'LeakyReLU(0.3)', 'Sigmoid()', 'Tanh()', 'GELU()', "GELU(approximate='tanh')", 'SiLU()', 'Identity()', 'Dropout(0.3)', 'Dropout2d()']:
    case(a, 'f32[N, 4, 5]', [('l', a)], (2, 4, 5))
case('softmax dim 1', 'f32[2, 3, 4]', [('l', 'Softmax(dim=1)')], (2, 3, 4))
case('softmax dim 0', 'f32[2, 3, 4]', [('l', 'Softmax(dim=0)')], (2, 3, 4))
case('logsoftmax -1', 'f32[N, 3, 4]', [('l', 'LogSoftmax(dim=-1)')], (2, 3, 4))
case('logsoftmax 1 of 4d', 'f32[2, 3, 2, 2]', [('l', 'LogSoftmax(dim=1)')], (2, 3, 2, 2))
case('batchnorm2d', 'f32[N, 3, 4, 5]', [('l', 'BatchNorm2d(3)')], (2, 3, 4, 5))
case('batchnorm1d no affine', 'f32[3, 4]', [('l', 'BatchNorm1d(4, affine=False)')], (3, 4))
case('batchnorm1d batch stats 3d', 'f32[3, 4, 5]', [('l', 'BatchNorm1d(4, track_running_stats=False)')], (3, 4, 5))
case('batchnorm2d batch stats', 'f32[N, 2, 3, 3]', [('l', 'BatchNorm2d(2, eps=0.01, track_running_stats=False, affine=False)')], (4, 2, 3, 3))
case('layernorm 2 dims', 'f32[2, 3, 4, 5]', [('l', 'LayerNorm((4, 5))')], (2, 3, 4, 5))
case('layernorm no affine', 'f32[N, 5]', [('l', 'LayerNorm(5, eps=0.1, elementwise_affine=False)')], (3, 5))
case('linear rank 3', 'f32[N, 4, 5]', [('l', 'Linear(5, 3)')], (2, 4, 5))
case('linear 1-D', 'f32[5]', [('l', 'Linear(5, 3, bias=False)')], (5,))
case('embedding max_norm p=1 pad', 'i64[N, 4]', [('l', 'Embedding(10, 4, padding_idx=2, max_norm=1.5, norm_type=1.0)')], (3, 4), dtype='i64')
case('embedding max_norm p=2', 'i64[3, 4]', [('l', 'Embedding(10, 4, max_norm=1.0)')], (3, 4), dtype='i64')
case('embedding max_norm p=3', 'i64[3, 4]', [('l', 'Embedding(10, 4, max_norm=0.8, norm_type=3.0)')], (3, 4), dtype='i64')
for m in ['sum', 'mean', 'max']:
    case('embeddingbag %s pad' % m, 'i64[6, 5]', [('l', "EmbeddingBag(10, 3, mode='%s', padding_idx=1)" % m)], (6, 5), dtype='i64')
    case('embeddingbag %s max_norm' % m, 'i64[N, 5]', [('l', "EmbeddingBag(10, 3, mode='%s', max_norm=1.0)" % m)], (4, 5), dtype='i64')
case('rnn relu 2L bi bf', 'f32[N, 6, 4]', [('l', "RNN(4, 5, num_layers=2, nonlinearity='relu', bidirectional=True, batch_first=True)", True)], (2, 6, 4))
case('rnn tanh unbatched', 'f32[6, 4]', [('l', 'RNN(4, 5)', True)], (6, 4))
case('lstm 2L bi proj', 'f32[5, 2, 4]', [('l', 'LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=3)', True)], (5, 2, 4))
case('lstm bf', 'f32[N, 5, 4]', [('l', 'LSTM(4, 6, batch_first=True)', True)], (3, 5, 4))
case('lstm unbatched bf no bias', 'f32[5, 4]', [('l', 'LSTM(4, 6, batch_first=True, bias=False)', True)], (5, 4))
case('gru 2L bi nobias', 'f32[5, 2, 4]', [('l', 'GRU(4, 5, num_layers=2, bidirectional=True, bias=False)', True)], (5, 2, 4))
case('gru bf 3L', 'f32[N, 5, 4]', [('l', 'GRU(4, 5, num_layers=3, batch_first=True, dropout=0.5)', True)], (2, 5, 4))
case('transformer seq-first', 'f32[5, 2, 8]', [('l', 'TransformerEncoderLayer(8, 2, 16, dropout=0.1)')], (5, 2, 8))
case('transformer bf norm_first gelu', 'f32[N, 5, 8]', [('l', "TransformerEncoderLayer(8, 4, 16, activation='gelu', batch_first=True, norm_first=True, layer_norm_eps=1e-3)")], (2, 5, 8))
case('transformer unbatched', 'f32[5, 8]', [('l', 'TransformerEncoderLayer(8, 2, 12)')], (5, 8))
case('transformer bf post', 'f32[N, 3, 8]', [('l', 'TransformerEncoderLayer(8, 8, 12, batch_first=True)')], (3, 3, 8))
case('cnn chain', 'f32[N, 3, 12, 12]', [('c', 'Conv2d(3, 8, 3, padding=1)'), ('b', 'BatchNorm2d(8)'), ('r', 'ReLU()'), ('p', 'MaxPool2d(2)'),
     ('a', 'AdaptiveAvgPool2d(2)'), ('f', 'Flatten()'), ('fc', 'Linear(32, 5)'), ('s', 'LogSoftmax(dim=1)')], (2, 3, 12, 12))
case('text chain', 'i64[N, 7]', [('e', 'Embedding(10, 6)'), ('lstm', 'LSTM(6, 5, batch_first=True)', True), ('f', 'Flatten()'), ('fc', 'Linear(35, 2)')], (2, 7), dtype='i64')

fails = sum(not run_case(*c) for c in C)
print('torch crosscheck: %d passed, %d failed' % (len(C) - fails, fails))
sys.exit(1 if fails else 0)
