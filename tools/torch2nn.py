#!/usr/bin/python3
"""torch2nn.py - export a PyTorch nn.Module to layerc's layer language.

Writes the model as a .nn file and its state_dict as a .safetensors file whose
keys are exactly the ones `layerc build --weights` looks up.  Run it with
Debian's interpreter, which has torch (the python3 on PATH may not):

    /usr/bin/python3 tools/torch2nn.py torchvision.models.resnet18 --input-shape N,3,224,224
    /usr/bin/python3 tools/torch2nn.py mynet.py:Net --kwargs "{'classes': 10}" --state-dict net.pt \\
        --input-shape N,1,28,28 -o net.nn --example-io net_io/
    /usr/bin/python3 tools/torch2nn.py whole_module.pt --input-shape N,20 -o text.nn

The module is taken in eval mode (the language has inference semantics) and
converted one module at a time, as torch.fx traces it with every submodule a
leaf:
  - a layer of the language's table (Conv2d, BatchNorm2d, LSTM, ...) becomes a
    layer call with the arguments read from its attributes, defaults omitted;
  - an nn.Sequential numbered 0, 1, ... becomes Sequential(...); a subclass of
    it (torchvision's Conv2dNormActivation) or one with named children, a
    block without forward;
  - any other module becomes a block with a forward section made from its
    traced graph (+, *, cat and the functions the language has); instances of
    one class with the same structure share one block, the numbers that
    differ between them becoming the block's parameters;
  - the model is the stack form when its forward calls its children one after
    the other (nn.Sequential, or named children used as a stack), else the
    graph form.
What has no form in the language (a torch.nn layer outside the table, a
function or tensor method in a forward with no counterpart, control flow that
torch.fx cannot trace, an option that layerc refuses) is an error naming the
module's path, with exit status 1 and no output file.  When ./layerc is built
(or --layerc is given), the written text is checked with `layerc shapes`: the
same state_dict keys and shapes as PyTorch's, the same output shapes.
README.md, "Exporting from PyTorch", documents the options and the errors;
tools/test_torch2nn.py tests it (`make test-export`).
"""

import argparse
import ast
import builtins
import dis
import importlib
import importlib.util
import inspect
import json
import operator
import os
import re
import struct
import subprocess
import sys
import tempfile
import warnings

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_BATCH = 2
NN_KEYWORDS = {"model", "input", "True", "False", "None", "block", "forward", "if", "else", "return", "and", "or", "not"}
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# a submodule or value name inside a body: `block` is a keyword only where a block can start
BODY_KEYWORDS = NN_KEYWORDS - {"block"}


class ExportError(Exception):
    """The module cannot be exported: exit status 1."""


class UsageError(Exception):
    """The command line is wrong: exit status 2."""


# ---------------------------------------------------------------- naming things in messages

def class_name(module):
    """torch.nn.Upsample for torch.nn's own classes, else module.qualname."""
    cls = type(module)
    if getattr(nn, cls.__name__, None) is cls:
        return "torch.nn." + cls.__name__
    return "%s.%s" % (cls.__module__, cls.__qualname__)


def class_name_of(cls):
    if getattr(nn, cls.__name__, None) is cls:
        return "torch.nn." + cls.__name__
    return "%s.%s" % (cls.__module__, cls.__qualname__)


def label(path, module):
    return "%s (%s)" % (path or "the model", class_name(module))


def function_name(fn):
    if fn in OPERATOR_TEXT:
        return OPERATOR_TEXT[fn]
    mod = getattr(fn, "__module__", None) or "torch"
    name = getattr(fn, "__name__", repr(fn))
    if mod.startswith("torch._C"):
        mod = "torch.nn.functional" if mod == "torch._C._nn" else "torch"
    return "%s.%s" % (mod.replace("_operator", "operator"), name)


OPERATOR_TEXT = {operator.sub: "a - b (operator.sub)", operator.truediv: "a / b (operator.truediv)",
                 operator.floordiv: "a // b (operator.floordiv)", operator.matmul: "a @ b (operator.matmul)",
                 operator.neg: "-a (operator.neg)", operator.pow: "a ** b (operator.pow)",
                 operator.isub: "a -= b (operator.isub)", operator.itruediv: "a /= b (operator.itruediv)"}


# ---------------------------------------------------------------- the module as written in the language
#
# Declarations are trees of these; every integer of a declaration is a Slot, a
# candidate parameter of the block it sits in.  A Slot with a default is a
# keyword argument left out where it has its default.

class Slot:
    __slots__ = ("value", "hint", "default")

    def __init__(self, value, hint, default=None):
        self.value, self.hint, self.default = int(value), hint, default


class Layer:
    """A layer call: Conv2d(3, 64, 3, padding=1); args are (keyword or None, value)."""

    def __init__(self, name, args, comment=None):
        self.name, self.args, self.comment = name, args, comment


class Seq:
    def __init__(self, children):
        self.children = children


class Inst:
    """An instance of a block: the class, its lines (name or None, declaration), and
    its forward statements (None for a block without forward, a stack)."""

    def __init__(self, path, module, base_name, lines, forward):
        self.path, self.module, self.base_name = path, module, base_name
        self.lines, self.forward = lines, forward
        self.variant = None
        self.call_slots = None


def fmt_literal(v):
    if v is None or isinstance(v, bool):
        return repr(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return "'%s'" % v
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (tuple, list)):
        return "(%s)" % ", ".join(fmt_literal(x) for x in v)
    raise ExportError("internal: cannot write %r" % (v,))


def value_signature(v):
    if isinstance(v, Slot):
        return ("#", v.default)
    if isinstance(v, tuple):
        return ("()",) + tuple(value_signature(x) for x in v)
    return ("=", fmt_literal(v))


def expr_signature(e):
    if isinstance(e, Layer):
        return ("L", e.name, tuple((k, value_signature(v)) for k, v in e.args))
    if isinstance(e, Seq):
        return ("S",) + tuple(expr_signature(c) for c in e.children)
    return ("B", id(e.variant))


def value_slots(v, out):
    if isinstance(v, Slot):
        out.append(v)
    elif isinstance(v, tuple):
        for x in v:
            value_slots(x, out)


def expr_slots(e, out):
    if isinstance(e, Layer):
        for _, v in e.args:
            value_slots(v, out)
    elif isinstance(e, Seq):
        for c in e.children:
            expr_slots(c, out)
    else:
        out.extend(e.call_slots)
    return out


class LiteralSlots:
    """Renders every Slot as its value (the model's own body): defaults left out."""

    def take(self, slot):
        return None if slot.default is not None and slot.value == slot.default else str(slot.value)


class VariantSlots:
    """Renders a block's Slots in order: a parameter name, a constant, or left out."""

    def __init__(self, decisions):
        self.decisions, self.pos = decisions, 0

    def take(self, slot):
        d = self.decisions[self.pos]
        self.pos += 1
        return d


def render_value(v, slots):
    if isinstance(v, Slot):
        return slots.take(v)
    if isinstance(v, tuple):
        return "(%s)" % ", ".join(render_value(x, slots) for x in v)
    return fmt_literal(v)


def render_call(name, args, slots):
    parts = []
    for kw, v in args:
        text = render_value(v, slots)
        if text is None:
            continue
        parts.append(text if kw is None else "%s=%s" % (kw, text))
    return "%s(%s)" % (name, ", ".join(parts))


def render_expr(e, slots, indent):
    if isinstance(e, Layer):
        return render_call(e.name, e.args, slots)
    if isinstance(e, Seq):
        items = [render_expr(c, slots, indent + "    ") for c in e.children]
        one_line = "Sequential(%s)" % ", ".join(items)
        if len(e.children) <= 2 and all(not isinstance(c, Seq) for c in e.children) and len(one_line) <= 80:
            return one_line
        return "Sequential(\n%s%s)" % ("".join("%s    %s,\n" % (indent, i) for i in items), indent)
    args = [(None, s) for s in e.call_slots]
    return render_call(e.variant.name, args, slots)


# ---------------------------------------------------------------- layers of the table, read from their attributes

def pair(value, hint, default=None):
    """An int or a pair of ints: one Slot when both are equal, as PyTorch accepts."""
    if isinstance(value, (tuple, list)):
        if len(set(value)) == 1:
            return Slot(value[0], hint, default)
        return tuple(Slot(x, hint) for x in value)
    return Slot(value, hint, default)


def keyword_if(args, name, value, default):
    if value != default or type(value) is not type(default):
        args.append((name, value))


def is_default_pair(value, default):
    return value == default or (isinstance(value, (tuple, list)) and all(x == default for x in value))


def conv2d_layer(m, path):
    a = [(None, Slot(m.in_channels, "in_channels")), (None, Slot(m.out_channels, "out_channels")),
         (None, pair(m.kernel_size, "kernel_size")), ("stride", pair(m.stride, "stride", 1))]
    if isinstance(m.padding, str):
        a.append(("padding", m.padding))
    else:
        a.append(("padding", pair(m.padding, "padding", 0)))
    a += [("dilation", pair(m.dilation, "dilation", 1)), ("groups", Slot(m.groups, "groups", 1))]
    keyword_if(a, "bias", m.bias is not None, True)
    keyword_if(a, "padding_mode", m.padding_mode, "zeros")
    return Layer("Conv2d", a)


def pool_stride(a, m):
    """MaxPool2d/AvgPool2d keep stride = kernel_size when it was not given: left out then."""
    if not (m.stride == m.kernel_size or m.stride is None or m.stride == []):
        a.append(("stride", pair(m.stride, "stride")))


def maxpool2d_layer(m, path):
    if m.return_indices:
        raise ExportError("%s: return_indices=True is refused by the layer language (two outputs)" % label(path, m))
    a = [(None, pair(m.kernel_size, "kernel_size"))]
    pool_stride(a, m)
    a += [("padding", pair(m.padding, "padding", 0)), ("dilation", pair(m.dilation, "dilation", 1))]
    keyword_if(a, "ceil_mode", bool(m.ceil_mode), False)
    return Layer("MaxPool2d", a)


def avgpool2d_layer(m, path):
    a = [(None, pair(m.kernel_size, "kernel_size"))]
    pool_stride(a, m)
    a.append(("padding", pair(m.padding, "padding", 0)))
    keyword_if(a, "ceil_mode", bool(m.ceil_mode), False)
    keyword_if(a, "count_include_pad", bool(m.count_include_pad), True)
    if m.divisor_override is not None:
        a.append(("divisor_override", Slot(m.divisor_override, "divisor_override")))
    return Layer("AvgPool2d", a)


def adaptive_size(size):
    if isinstance(size, (tuple, list)):
        return tuple(None if s is None else Slot(s, "output_size") for s in size)
    return Slot(size, "output_size")


def adaptive_avgpool2d_layer(m, path):
    return Layer("AdaptiveAvgPool2d", [(None, adaptive_size(m.output_size))])


def inplace_layer(name):
    def write(m, path):
        a = []
        keyword_if(a, "inplace", bool(m.inplace), False)
        return Layer(name, a)
    return write


def plain_layer(name):
    return lambda m, path: Layer(name, [])


def leaky_relu_layer(m, path):
    a = []
    keyword_if(a, "negative_slope", float(m.negative_slope), 0.01)
    keyword_if(a, "inplace", bool(m.inplace), False)
    return Layer("LeakyReLU", a)


def gelu_layer(m, path):
    a = []
    keyword_if(a, "approximate", getattr(m, "approximate", "none"), "none")
    return Layer("GELU", a)


def softmax_layer(name):
    def write(m, path):
        return Layer(name, [] if m.dim is None else [("dim", m.dim)])
    return write


def batchnorm_layer(name):
    def write(m, path):
        a = [(None, Slot(m.num_features, "num_features"))]
        keyword_if(a, "eps", float(m.eps), 1e-5)
        if m.momentum is None:
            a.append(("momentum", None))
        else:
            keyword_if(a, "momentum", float(m.momentum), 0.1)
        keyword_if(a, "affine", bool(m.affine), True)
        keyword_if(a, "track_running_stats", bool(m.track_running_stats), True)
        return Layer(name, a)
    return write


def layernorm_layer(m, path):
    shape = tuple(m.normalized_shape)
    a = [(None, Slot(shape[0], "normalized_shape") if len(shape) == 1
          else tuple(Slot(s, "normalized_shape") for s in shape))]
    keyword_if(a, "eps", float(m.eps), 1e-5)
    keyword_if(a, "elementwise_affine", bool(m.elementwise_affine), True)
    if m.elementwise_affine and getattr(m, "bias", None) is None:
        a.append(("bias", False))
    return Layer("LayerNorm", a)


def linear_layer(m, path):
    a = [(None, Slot(m.in_features, "in_features")), (None, Slot(m.out_features, "out_features"))]
    keyword_if(a, "bias", m.bias is not None, True)
    return Layer("Linear", a)


def bilinear_layer(m, path):
    a = [(None, Slot(m.in1_features, "in1_features")), (None, Slot(m.in2_features, "in2_features")),
         (None, Slot(m.out_features, "out_features"))]
    keyword_if(a, "bias", m.bias is not None, True)
    return Layer("Bilinear", a)


def flatten_layer(m, path):
    a = []
    keyword_if(a, "start_dim", m.start_dim, 1)
    keyword_if(a, "end_dim", m.end_dim, -1)
    return Layer("Flatten", [(None if k == "start_dim" else k, v) for k, v in a])


def dropout_layer(name):
    def write(m, path):
        a = []
        keyword_if(a, "p", float(m.p), 0.5)
        keyword_if(a, "inplace", bool(m.inplace), False)
        return Layer(name, a)
    return write


def embedding_common(a, m):
    if m.max_norm is not None:
        a.append(("max_norm", float(m.max_norm)))
    keyword_if(a, "norm_type", float(m.norm_type), 2.0)
    keyword_if(a, "scale_grad_by_freq", bool(m.scale_grad_by_freq), False)


def embedding_layer(m, path):
    a = [(None, Slot(m.num_embeddings, "num_embeddings")), (None, Slot(m.embedding_dim, "embedding_dim"))]
    if m.padding_idx is not None:
        a.append(("padding_idx", Slot(m.padding_idx, "padding_idx")))
    embedding_common(a, m)
    keyword_if(a, "sparse", bool(m.sparse), False)
    return Layer("Embedding", a)


def embedding_bag_layer(m, path):
    if m.include_last_offset:
        raise ExportError("%s: include_last_offset=True is refused by layerc build (it needs offsets, a second "
                          "tensor)" % label(path, m))
    a = [(None, Slot(m.num_embeddings, "num_embeddings")), (None, Slot(m.embedding_dim, "embedding_dim"))]
    embedding_common(a, m)
    keyword_if(a, "mode", m.mode, "mean")
    keyword_if(a, "sparse", bool(m.sparse), False)
    if m.padding_idx is not None:
        a.append(("padding_idx", Slot(m.padding_idx, "padding_idx")))
    return Layer("EmbeddingBag", a)


def recurrent_layer(name):
    def write(m, path):
        a = [(None, Slot(m.input_size, "input_size")), (None, Slot(m.hidden_size, "hidden_size")),
             ("num_layers", Slot(m.num_layers, "num_layers", 1))]
        if name == "RNN":
            keyword_if(a, "nonlinearity", m.nonlinearity, "tanh")
        keyword_if(a, "bias", bool(m.bias), True)
        keyword_if(a, "batch_first", bool(m.batch_first), False)
        keyword_if(a, "dropout", float(m.dropout), 0.0)
        keyword_if(a, "bidirectional", bool(m.bidirectional), False)
        if name == "LSTM":
            a.append(("proj_size", Slot(m.proj_size, "proj_size", 0)))
        return Layer(name, a)
    return write


def transformer_activation(m, path):
    act = m.activation
    if act is F.relu or isinstance(act, nn.ReLU) or act == "relu":
        return "relu"
    if act is F.gelu or (isinstance(act, nn.GELU) and act.approximate == "none") or act == "gelu":
        return "gelu"
    raise ExportError("%s: activation %r is refused by the layer language (it takes 'relu' or 'gelu')"
                      % (label(path, m), act))


def transformer_encoder_layer(m, path):
    att = m.self_attn
    if not att._qkv_same_embed_dim or m.norm1.eps != m.norm2.eps:
        raise ExportError("%s: separate key/value sizes or two LayerNorm eps have no form in the layer language"
                          % label(path, m))
    a = [(None, Slot(att.embed_dim, "d_model")), (None, Slot(att.num_heads, "nhead")),
         ("dim_feedforward", Slot(m.linear1.out_features, "dim_feedforward", 2048))]
    keyword_if(a, "dropout", float(m.dropout.p), 0.1)
    keyword_if(a, "activation", transformer_activation(m, path), "relu")
    keyword_if(a, "layer_norm_eps", float(m.norm1.eps), 1e-5)
    keyword_if(a, "batch_first", bool(att.batch_first), False)
    keyword_if(a, "norm_first", bool(m.norm_first), False)
    if m.linear1.bias is None:
        a.append(("bias", False))
    return Layer("TransformerEncoderLayer", a)


LAYER_WRITERS = {
    nn.Conv2d: conv2d_layer, nn.MaxPool2d: maxpool2d_layer, nn.AvgPool2d: avgpool2d_layer,
    nn.AdaptiveAvgPool2d: adaptive_avgpool2d_layer,
    nn.ReLU: inplace_layer("ReLU"), nn.ReLU6: inplace_layer("ReLU6"), nn.LeakyReLU: leaky_relu_layer,
    nn.Sigmoid: plain_layer("Sigmoid"), nn.Tanh: plain_layer("Tanh"), nn.GELU: gelu_layer,
    nn.SiLU: inplace_layer("SiLU"), nn.Hardswish: inplace_layer("Hardswish"),
    nn.Softmax: softmax_layer("Softmax"), nn.LogSoftmax: softmax_layer("LogSoftmax"),
    nn.BatchNorm1d: batchnorm_layer("BatchNorm1d"), nn.BatchNorm2d: batchnorm_layer("BatchNorm2d"),
    nn.LayerNorm: layernorm_layer, nn.Linear: linear_layer, nn.Bilinear: bilinear_layer,
    nn.Identity: plain_layer("Identity"), nn.Flatten: flatten_layer,
    nn.Dropout: dropout_layer("Dropout"), nn.Dropout2d: dropout_layer("Dropout2d"),
    nn.Embedding: embedding_layer, nn.EmbeddingBag: embedding_bag_layer,
    nn.RNN: recurrent_layer("RNN"), nn.LSTM: recurrent_layer("LSTM"), nn.GRU: recurrent_layer("GRU"),
    nn.TransformerEncoderLayer: transformer_encoder_layer,
}
LANGUAGE_NAMES = {"Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "ReLU", "ReLU6", "LeakyReLU", "Sigmoid",
                  "Tanh", "GELU", "SiLU", "Hardswish", "Softmax", "LogSoftmax", "BatchNorm1d", "BatchNorm2d",
                  "LayerNorm", "Linear", "LazyLinear", "Bilinear", "Identity", "Flatten", "Dropout", "Dropout2d",
                  "Embedding", "EmbeddingBag", "RNN", "LSTM", "GRU", "TransformerEncoderLayer", "Select", "Mean",
                  "Sequential", "add", "mul", "cat"}


def layer_writer(m):
    """The writer of m's layer: its class is in the table, or derives from one without a forward of its own."""
    for cls in type(m).__mro__:
        if cls in LAYER_WRITERS:
            return LAYER_WRITERS[cls] if type(m).forward is cls.forward else None
    return None


def has_state(m):
    return any(True for _ in m.state_dict().keys())


# ---------------------------------------------------------------- forward: the traced graph as statements

class UnpackableProxy(fx.Proxy):
    """fx.Proxy whose unpacking (out, state = self.lstm(x)) also works on Python 3.11: torch 1.13 finds the
    UNPACK_SEQUENCE instruction at f_lasti // 2, which 3.11's inline caches moved."""

    def __iter__(self):
        frame = inspect.currentframe().f_back
        for inst in dis.get_instructions(frame.f_code):
            if inst.offset == frame.f_lasti:
                if inst.opname == "UNPACK_SEQUENCE":
                    return (self[i] for i in range(inst.argval))
                break
        raise fx.proxy.TraceError("Proxy object cannot be iterated (a loop over a tensor, or *args)")


class LeafTracer(fx.Tracer):
    """Every submodule is a leaf: a module's forward is traced one level at a time."""

    def is_leaf_module(self, m, qualname):
        return True

    def proxy(self, node):
        return UnpackableProxy(node, self)


class Op:
    """One computed tensor of a forward: text with {0}, {1}, ... for its input tensors.
    child: the submodule it calls; layer: the stack line that computes the same."""

    def __init__(self, node, text, inputs, child=None, layer=None):
        self.node, self.text, self.inputs, self.child, self.layer = node, text, inputs, child, layer


class Meta:
    """A value of the graph that is not a tensor: a recurrent layer's (output, state),
    a size or shape (for view/reshape), a constant."""

    def __init__(self, kind, source=None, value=None):
        self.kind, self.source, self.value = kind, source, value


def bind_args(args, kwargs, names, defaults, where):
    """Python's argument binding for a function given by its parameter names."""
    out = dict(defaults)
    if len(args) > len(names):
        raise ExportError("%s: too many arguments" % where)
    for n, v in zip(names, args):
        out[n] = v
    for k, v in kwargs.items():
        if k not in names:
            raise ExportError("%s: unexpected argument %s=" % (where, k))
        out[k] = v
    missing = [n for n in names if n not in out]
    if missing:
        raise ExportError("%s: missing argument %s" % (where, missing[0]))
    return out


def int_list(v):
    return list(v) if isinstance(v, (tuple, list)) else [v]


class ForwardConverter:
    """Turns the traced graph of one module's forward into Ops."""

    def __init__(self, exporter, path, module, graph, example_inputs):
        self.ex, self.path, self.module, self.graph = exporter, path, module, graph
        self.where = label(path, module)
        self.example_inputs = example_inputs
        self.values = {}      # fx Node -> Op | Meta | placeholder index
        self.ops = []
        self.shapes = None

    def refuse(self, what):
        raise ExportError("%s: %s" % (self.where, what))

    # --- shapes, only when a view/reshape needs them
    def shape_of(self, node):
        if self.shapes is None:
            self.shapes = self.ex.propagate_shapes(self.path, self.module, self.graph, self.example_inputs)
        return self.shapes.get(node)

    def tensor(self, v, what):
        """The Op or placeholder behind argument v, which must be a tensor."""
        if isinstance(v, fx.Node):
            val = self.values[v]
            if isinstance(val, Meta):
                if val.kind == "recurrent":
                    self.refuse("uses the (output, state) pair of %s as a tensor; take its output, "
                                "element 0" % val.source)
                self.refuse("uses %s as a tensor in %s" % (val.kind, what))
            return val.node if isinstance(val, Op) else val[2]   # through aliases (dropout, ...)
        self.refuse("%s of a constant (%r): the layer language computes on tensors only" % (what, v))

    def add(self, node, text, inputs, layer=None, child=None):
        ins = [self.tensor(i, text.split("(")[0]) for i in inputs]
        op = Op(node, text, ins, child=child, layer=layer)
        self.values[node] = op
        self.ops.append(op)

    def alias(self, node, value):
        self.values[node] = self.values[value] if isinstance(value, fx.Node) else value

    def run(self):
        placeholders = []
        for node in self.graph.nodes:
            if node.op == "placeholder":
                self.values[node] = ("input", len(placeholders), node)
                placeholders.append(node)
            elif node.op == "get_attr":
                self.refuse("forward reads %s directly; the layer language keeps parameters in layers" % node.target)
            elif node.op == "call_module":
                self.call_module(node)
            elif node.op == "call_function":
                self.call_function(node)
            elif node.op == "call_method":
                self.call_method(node)
            elif node.op == "output":
                outs = node.args[0]
                outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
                self.outputs = [self.tensor(o, "the returned value") for o in outs]
        return placeholders

    # --- submodule calls
    def call_module(self, node):
        name = node.target
        if "." in name:
            self.refuse("forward calls %s, a submodule of a submodule (a ModuleList's item?); the layer language "
                        "calls a module's own submodules only" % name)
        if node.kwargs:
            self.refuse("forward calls %s with keyword arguments %s" % (name, ", ".join(node.kwargs)))
        child = getattr(self.module, name)
        for a in node.args:
            if isinstance(a, (list, tuple)):
                self.refuse("forward calls %s with a list of tensors; the layer language passes tensors one by one"
                            % name)
            if not isinstance(a, fx.Node):
                self.refuse("forward calls %s with %r, which is not a tensor" % (name, a))
        if isinstance(child, nn.RNNBase):
            if len(node.args) != 1:
                self.refuse("forward calls %s with an initial state; layerc starts from zeros" % name)
            self.add(node, name + "({0})", list(node.args), child=name)
            self.values[node] = Meta("recurrent", source=name, value=self.values[node])
            return
        self.add(node, "%s(%s)" % (name, ", ".join("{%d}" % i for i in range(len(node.args)))),
                 list(node.args), child=name)

    # --- functions
    def call_function(self, node):
        fn, args, kw = node.target, node.args, node.kwargs
        if fn is operator.getitem:
            return self.getitem(node, args[0], args[1])
        if fn is builtins.getattr:
            if args[1] == "shape":
                self.values[node] = Meta("shape", source=args[0])
                return
            self.refuse("forward reads the tensor attribute .%s" % args[1])
        handler = FUNCTIONS.get(fn)
        if handler is None:
            if fn in SCALAR_SAFE_IDENTITY:
                return self.alias(node, args[0])
            self.refuse("forward calls %s, which the layer language has no form for" % function_name(fn))
        handler(self, node, args, kw, function_name(fn))

    def call_method(self, node):
        name, args, kw = node.target, node.args, node.kwargs
        if name == "size":
            dim = args[1] if len(args) > 1 else kw.get("dim")
            self.values[node] = Meta("size", source=args[0], value=dim)
            return
        handler = METHODS.get(name)
        if handler is None:
            self.refuse("forward calls the tensor method .%s(), which the layer language has no form for" % name)
        handler(self, node, args, kw, "the tensor method .%s()" % name)

    def getitem(self, node, base, index):
        val = self.values.get(base) if isinstance(base, fx.Node) else None
        if isinstance(val, Meta) and val.kind == "recurrent":
            if index != 0:
                self.refuse("uses element %r of what %s returns (its state); the layer language continues with the "
                            "output sequence, element 0" % (index, val.source))
            self.values[node] = val.value
            return
        if isinstance(val, Meta) and val.kind in ("shape", "size"):
            self.values[node] = Meta("size", source=val.source, value=index)
            return
        # x[:, -1]: select(x, 1, -1)
        items = index if isinstance(index, tuple) else (index,)
        full = slice(None, None, None)
        k = 0
        while k < len(items) and items[k] == full:
            k += 1
        rest = items[k + 1:]
        if k < len(items) and isinstance(items[k], int) and not isinstance(items[k], bool) \
                and all(r == full or r is Ellipsis for r in rest):
            self.add(node, "select({0}, %d, %d)" % (k, items[k]), [base], layer=Layer("Select", [(None, k), (None, items[k])]))
            return
        self.refuse("forward indexes a tensor with [%s]; the layer language has select(x, dim, index) only"
                    % ", ".join(index_text(i) for i in items))


def index_text(i):
    if isinstance(i, slice):
        return ":".join("" if x is None else str(x) for x in (i.start, i.stop)) + \
            ("" if i.step is None else ":%s" % i.step)
    return "..." if i is Ellipsis else repr(i)


# Each handler: (converter, node, args, kwargs, what) -> adds an Op or an alias.

def unary(name, layer_name, params=(), keep=()):
    """fn(input, *params): the language's function `name`, keeping the non-default arguments in `keep`."""
    names = ["input"] + [p for p, _ in params]
    defaults = dict(params)

    def handle(c, node, args, kw, what):
        a = bind_args(args, kw, names, defaults, "%s: %s" % (c.where, what))
        extra, layer_args = [], []
        for p, d in params:
            if p in keep and a[p] != d:
                extra.append("%s=%s" % (p, fmt_literal(a[p])))
                layer_args.append((p, a[p]))
            elif p not in keep and p not in ("inplace", "_stacklevel") and a[p] != d:
                c.refuse("forward calls %s with %s=%r, which the layer language has no form for" % (what, p, a[p]))
        c.add(node, "%s({0}%s)" % (name, "".join(", " + e for e in extra)), [a["input"]],
              layer=Layer(layer_name, layer_args))
    return handle


def softmax_like(name, layer_name):
    def handle(c, node, args, kw, what):
        a = bind_args(args, kw, ["input", "dim", "_stacklevel", "dtype"], {"dim": None, "_stacklevel": 3,
                                                                          "dtype": None}, c.where)
        if a["dtype"] is not None:
            c.refuse("forward calls %s with dtype=%s, which the layer language has no form for" % (what, a["dtype"]))
        dim = a["dim"]
        c.add(node, "%s({0}%s)" % (name, "" if dim is None else ", %d" % dim), [a["input"]],
              layer=Layer(layer_name, [] if dim is None else [("dim", dim)]))
    return handle


def h_hardtanh(c, node, args, kw, what):
    a = bind_args(args, kw, ["input", "min_val", "max_val", "inplace"], {"min_val": -1.0, "max_val": 1.0,
                                                                        "inplace": False}, c.where)
    if (a["min_val"], a["max_val"]) != (0.0, 6.0):
        c.refuse("forward calls %s(min_val=%r, max_val=%r); the layer language has relu6 only"
                 % (what, a["min_val"], a["max_val"]))
    c.add(node, "relu6({0})", [a["input"]], layer=Layer("ReLU6", []))


def h_flatten(c, node, args, kw, what):
    a = bind_args(args, kw, ["input", "start_dim", "end_dim"], {"start_dim": 0, "end_dim": -1}, c.where)
    s, e = a["start_dim"], a["end_dim"]
    text = "flatten({0}%s%s)" % ("" if s == 0 and e == -1 else ", %d" % s, "" if e == -1 else ", %d" % e)
    layer_args = ([] if s == 1 else [(None, s)]) + ([] if e == -1 else [("end_dim", e)])
    c.add(node, text, [a["input"]], layer=Layer("Flatten", layer_args))


def size_text(v):
    return fmt_literal(tuple(v) if isinstance(v, list) else v)


def h_adaptive_avg_pool2d(c, node, args, kw, what):
    a = bind_args(args, kw, ["input", "output_size"], {}, c.where)
    size = a["output_size"]
    size = tuple(size) if isinstance(size, list) else size
    c.add(node, "adaptive_avg_pool2d({0}, %s)" % size_text(size), [a["input"]],
          layer=Layer("AdaptiveAvgPool2d", [(None, size)]))


def pool_keywords(a, spec):
    kws = []
    for p, d in spec:
        v = a[p]
        if v is None or v == [] or is_default_pair(v, d) and not isinstance(d, bool) or v is d:
            continue
        if isinstance(d, bool) and bool(v) == d:
            continue
        kws.append((p, tuple(v) if isinstance(v, list) else v))
    return kws


def h_max_pool2d(c, node, args, kw, what):
    names = ["input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"]
    a = bind_args(args, kw, names, {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False,
                                    "return_indices": False}, c.where)
    if a["return_indices"]:
        c.refuse("forward calls %s with return_indices=True (two outputs), which the layer language refuses" % what)
    k = tuple(a["kernel_size"]) if isinstance(a["kernel_size"], list) else a["kernel_size"]
    if a["stride"] is not None and a["stride"] != [] and (a["stride"] == k or list(int_list(a["stride"])) == list(int_list(k))):
        a["stride"] = None
    kws = pool_keywords(a, [("stride", None), ("padding", 0), ("dilation", 1), ("ceil_mode", False)])
    text = "max_pool2d({0}, %s%s)" % (size_text(k), "".join(", %s=%s" % (p, fmt_literal(v)) for p, v in kws))
    c.add(node, text, [a["input"]], layer=Layer("MaxPool2d", [(None, k)] + kws))


def h_avg_pool2d(c, node, args, kw, what):
    names = ["input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"]
    a = bind_args(args, kw, names, {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True,
                                    "divisor_override": None}, c.where)
    k = tuple(a["kernel_size"]) if isinstance(a["kernel_size"], list) else a["kernel_size"]
    if a["stride"] is not None and a["stride"] != [] and list(int_list(a["stride"])) == list(int_list(k)):
        a["stride"] = None
    kws = pool_keywords(a, [("stride", None), ("padding", 0), ("ceil_mode", False), ("count_include_pad", True),
                            ("divisor_override", None)])
    text = "avg_pool2d({0}, %s%s)" % (size_text(k), "".join(", %s=%s" % (p, fmt_literal(v)) for p, v in kws))
    c.add(node, text, [a["input"]], layer=Layer("AvgPool2d", [(None, k)] + kws))


def h_mean(c, node, args, kw, what):
    a = bind_args(args, kw, ["input", "dim", "keepdim", "dtype"], {"dim": None, "keepdim": False, "dtype": None},
                  c.where)
    if a["dim"] is None or a["dtype"] is not None:
        c.refuse("forward calls %s over %s; the layer language has mean(x, dim) over given dimensions"
                 % (what, "every dimension" if a["dim"] is None else "dtype=%s" % a["dtype"]))
    dims = int_list(a["dim"])
    keep = bool(a["keepdim"])
    # a mean over several dimensions is the mean over each in turn (the last first, so that the others keep
    # their numbers when keepdim is False; negative ones stay valid last-first too)
    rank = len(c.shape_of(a["input"]) or []) if any(d < 0 for d in dims) and not keep and len(dims) > 1 else None
    if rank is not None:
        dims = [d % rank for d in dims]
    dims = sorted(dims, reverse=True)
    text = "{0}"
    for d in dims:
        text = "mean(%s, %d%s)" % (text, d, ", keepdim=True" if keep else "")
    layer = Layer("Mean", [(None, dims[0])] + ([("keepdim", True)] if keep else [])) if len(dims) == 1 else None
    c.add(node, text, [a["input"]], layer=layer)


def h_select(c, node, args, kw, what):
    a = bind_args(args, kw, ["input", "dim", "index"], {}, c.where)
    c.add(node, "select({0}, %d, %d)" % (a["dim"], a["index"]), [a["input"]],
          layer=Layer("Select", [(None, a["dim"]), (None, a["index"])]))


def binary(symbol, layer_name):
    def handle(c, node, args, kw, what):
        a = bind_args(args, kw, ["input", "other", "alpha"], {"alpha": 1}, c.where)
        if a["alpha"] != 1:
            c.refuse("forward calls %s with alpha=%r, which the layer language has no form for" % (what, a["alpha"]))
        for side in ("input", "other"):
            if not isinstance(a[side], fx.Node):
                c.refuse("forward calls %s with the constant %r; the layer language %s tensors only"
                         % (what, a[side], "adds" if layer_name == "add" else "multiplies"))
        c.add(node, "{0} %s {1}" % symbol, [a["input"], a["other"]])
    return handle


def h_cat(c, node, args, kw, what):
    a = bind_args(args, kw, ["tensors", "dim"], {"dim": 0}, c.where)
    ts = list(a["tensors"])
    c.add(node, "cat([%s], %d)" % (", ".join("{%d}" % i for i in range(len(ts))), a["dim"]), ts)


def h_dropout(c, node, args, kw, what):
    a = bind_args(args, kw, ["input", "p", "training", "inplace"], {"p": 0.5, "training": True, "inplace": False},
                  c.where)
    if a["training"]:
        c.refuse("forward calls %s with training=True; the layer language has inference semantics" % what)
    c.alias(node, a["input"])


def h_stochastic_depth(c, node, args, kw, what):
    a = bind_args(args, kw, ["input", "p", "mode", "training"], {"training": True}, c.where)
    if a["training"] and a["p"] != 0:
        c.refuse("forward calls %s with training=True; the layer language has inference semantics" % what)
    c.alias(node, a["input"])


def h_identity_method(c, node, args, kw, what):
    c.alias(node, args[0])


def h_view(c, node, args, kw, what):
    """x.view(x.size(0), -1), x.reshape(N, -1), torch.reshape(x, (-1, 400)): flatten(x, k), when the
    shapes PyTorch computed say it is one."""
    base = args[0]
    c.tensor(base, what)
    src, dst = c.shape_of(base), c.shape_of(node)
    k = None
    if src is not None and dst is not None and len(dst) >= 1 and list(dst[:-1]) == list(src[:len(dst) - 1]):
        k = len(dst) - 1
    if k is None or k == 0:
        c.refuse("forward calls %s to reshape %s into %s, which only flatten(x, dim) can do in the layer language"
                 % (what, list(src) if src is not None else "?", list(dst) if dst is not None else "?"))
    c.add(node, "flatten({0}, %d)" % k, [base], layer=Layer("Flatten", [] if k == 1 else [(None, k)]))


FUNCTIONS = {
    F.relu: unary("relu", "ReLU", [("inplace", False)]), torch.relu: unary("relu", "ReLU"),
    torch.relu_: unary("relu", "ReLU"),
    F.relu6: unary("relu6", "ReLU6", [("inplace", False)]), F.hardtanh: h_hardtanh,
    F.leaky_relu: unary("leaky_relu", "LeakyReLU", [("negative_slope", 0.01), ("inplace", False)],
                        keep=("negative_slope",)),
    torch.sigmoid: unary("sigmoid", "Sigmoid"), F.sigmoid: unary("sigmoid", "Sigmoid"),
    torch.tanh: unary("tanh", "Tanh"), F.tanh: unary("tanh", "Tanh"),
    F.gelu: unary("gelu", "GELU", [("approximate", "none")], keep=("approximate",)),
    F.silu: unary("silu", "SiLU", [("inplace", False)]),
    F.hardswish: unary("hardswish", "Hardswish", [("inplace", False)]),
    F.softmax: softmax_like("softmax", "Softmax"), torch.softmax: softmax_like("softmax", "Softmax"),
    F.log_softmax: softmax_like("log_softmax", "LogSoftmax"),
    torch.log_softmax: softmax_like("log_softmax", "LogSoftmax"),
    torch.flatten: h_flatten, F.adaptive_avg_pool2d: h_adaptive_avg_pool2d,

    F.max_pool2d: h_max_pool2d, torch.max_pool2d: h_max_pool2d, F.avg_pool2d: h_avg_pool2d,
    torch.mean: h_mean, torch.select: h_select,
    operator.add: binary("+", "add"), operator.iadd: binary("+", "add"), torch.add: binary("+", "add"),
    operator.mul: binary("*", "mul"), operator.imul: binary("*", "mul"), torch.mul: binary("*", "mul"),
    torch.cat: h_cat, F.dropout: h_dropout, F.dropout2d: h_dropout, torch.reshape: h_view,
}
if hasattr(torch, "concat"):
    FUNCTIONS[torch.concat] = h_cat
SCALAR_SAFE_IDENTITY = set()
try:  # torchvision wraps stochastic_depth for torch.fx: a leaf function, the identity in eval mode
    from torchvision.ops import stochastic_depth as _stochastic_depth
    FUNCTIONS[_stochastic_depth] = h_stochastic_depth
except ImportError:
    pass

METHODS = {
    "relu": unary("relu", "ReLU"), "relu_": unary("relu", "ReLU"), "sigmoid": unary("sigmoid", "Sigmoid"),
    "tanh": unary("tanh", "Tanh"), "softmax": softmax_like("softmax", "Softmax"),
    "log_softmax": softmax_like("log_softmax", "LogSoftmax"), "flatten": h_flatten, "mean": h_mean,
    "select": h_select, "add": binary("+", "add"), "add_": binary("+", "add"), "mul": binary("*", "mul"),
    "mul_": binary("*", "mul"), "view": h_view, "reshape": h_view,
    "contiguous": h_identity_method, "clone": h_identity_method, "detach": h_identity_method,
}


# ---------------------------------------------------------------- writing a forward section

def forward_statements(conv, param_names, taken_names):
    """The forward body: an Op used once is written inside its user (up to a line's length), the others are
    assigned to names, which are reused once their value is dead."""
    ops = conv.ops
    uses = {}
    for op in ops:
        for i in op.inputs:
            uses[i] = uses.get(i, 0) + 1
    for o in conv.outputs:
        uses[o] = uses.get(o, 0) + 1
    text = {}       # node -> inline text (for inlined ops)
    statements = []  # (node, expression text)

    def ref(n):
        if n in text:
            return text[n]
        return ("\0%s\0" % n.name)

    for op in ops:
        expr = op.text.format(*[ref(i) for i in op.inputs])
        returned = op.node in conv.outputs   # used once by return: written there, however long
        inline = uses.get(op.node, 0) == 1 and (returned or len(re.sub("\0[^\0]*\0", "x1", expr)) <= 64)
        if inline:
            text[op.node] = expr
        else:
            statements.append((op.node, expr))
    returns = [ref(o) for o in conv.outputs]

    # names: live from assignment to last use
    ref_re = re.compile("\0([^\0]*)\0")
    last_use = {}
    for k, (_, expr) in enumerate(statements):
        for name in ref_re.findall(expr):
            last_use[name] = k
    for name in ref_re.findall(" ".join(returns)):
        last_use[name] = len(statements)
    names = {}
    live = {}
    placeholders = [n for n in conv.graph.nodes if n.op == "placeholder"]
    for node, pname in zip(placeholders, param_names):
        names[node.name] = pname
        live[pname] = node.name

    def pool():
        yield from ("x", "y", "z")
        k = 1
        while True:
            for base in ("x", "y", "z"):
                yield "%s%d" % (base, k)
            k += 1

    lines = []
    for k, (node, expr) in enumerate(statements):
        body = ref_re.sub(lambda m: names[m.group(1)], expr)
        for name in set(ref_re.findall(expr)):
            if last_use.get(name) == k:
                live.pop(names[name], None)
        chosen = next(n for n in pool() if n not in live and n not in taken_names)
        names[node.name] = chosen
        if node.name in last_use:
            live[chosen] = node.name
        lines.append("%s = %s" % (chosen, body))
    rets = [ref_re.sub(lambda m: names[m.group(1)], r) for r in returns]
    lines.append("return %s" % ", ".join(rets))
    return lines


# ---------------------------------------------------------------- the exporter

class Exporter:
    def __init__(self, root, example_inputs):
        self.root = root
        self.example_inputs = example_inputs      # id(module) -> tuple of its first call's arguments
        self.instances = []
        self.dropped = []      # paths of submodules with weights that forward never calls

    def propagate_shapes(self, path, module, graph, example):
        """The shape of every value of a module's traced forward, computed by PyTorch on the sample input."""
        from torch.fx.passes.shape_prop import ShapeProp
        gm = fx.GraphModule(module, graph)
        args = example.get(id(module))
        if args is None:
            raise ExportError("%s: is never called on the sample input, so its shapes are unknown" % label(path, module))
        with torch.no_grad():
            ShapeProp(gm).propagate(*args)
        out = {}
        for n in gm.graph.nodes:
            meta = n.meta.get("tensor_meta")
            if meta is not None and hasattr(meta, "shape"):
                out[n] = list(meta.shape)
        # fx.GraphModule copies the graph; map back by name
        return {node: out[m] for node in graph.nodes for m in out if m.name == node.name}

    # --- a module as a declaration
    def declaration(self, path, m, nargs=1):
        writer = layer_writer(m)
        if writer:
            return writer(m, path)
        table = next((c for c in type(m).__mro__ if c in LAYER_WRITERS), None)
        if table is not None:
            raise ExportError("%s: a subclass of %s with a forward of its own, which the layer language has no "
                              "form for" % (label(path, m), class_name_of(table)))
        if isinstance(m, nn.Sequential) and type(m).forward is nn.Sequential.forward:
            return self.sequential(path, m)
        if type(m).__module__.startswith("torch.nn") or type(m).__module__.startswith("torch.ao"):
            raise ExportError("%s: not supported by the layer language" % label(path, m))
        own = list(m._parameters) + list(m._buffers)
        if own:
            raise ExportError("%s: has parameters of its own (%s); in the layer language only layers have "
                              "parameters" % (label(path, m), ", ".join(own)))
        return self.traced_block(path, m, nargs)

    def sequential(self, path, m):
        names = list(m._modules)
        numbered = names == [str(i) for i in range(len(names))]
        children = [self.declaration(join(path, n), c) for n, c in m._modules.items()]
        if numbered and type(m) is nn.Sequential:
            return Seq(children)
        base = type(m).__name__ if type(m) is not nn.Sequential else camel(path.split(".")[-1] or "Stack")
        if not numbered:
            for n in names:
                check_name(path, m, n)
        lines = [(None if numbered else n, c) for n, c in zip(names, children)]
        return self.new_instance(path, m, base, lines, None)

    def trace(self, path, m, nargs):
        params = [p for p in inspect.signature(m.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        concrete = {p.name: p.default for p in params[nargs:] if p.default is not p.empty}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                graph = LeafTracer().trace(m, concrete_args=concrete or None)
        except Exception as e:  # fx's TraceError, NameError, TypeError ...: all say why
            msg = str(e).split("\n")[0]
            raise ExportError("%s: torch.fx cannot trace its forward (%s: %s); control flow on tensor values "
                              "or Python code on their sizes has no form in the layer language"
                              % (label(path, m), type(e).__name__, msg))
        for node in reversed(list(graph.nodes)):  # values never used (x.shape read and dropped, ...)
            if node.op not in ("placeholder", "output") and not node.users:
                graph.erase_node(node)
        return graph

    def convert_forward(self, path, m, nargs):
        graph = self.trace(path, m, nargs)
        conv = ForwardConverter(self, path, m, graph, self.example_inputs)
        conv.run()
        return conv

    def traced_block(self, path, m, nargs):
        conv = self.convert_forward(path, m, nargs)
        called = {}
        for op in conv.ops:
            if op.child:
                called[op.child] = called.get(op.child, 0) + 1
        # a module without state that does nothing, or one thing, in eval mode: the layer it is
        if not has_state(m):
            if [o for o in conv.outputs] == [n for n in conv.graph.nodes if n.op == "placeholder"][:1] \
                    and len(conv.outputs) == 1:
                return Layer("Identity", [], comment="%s: the identity in eval mode" % class_name(m))
            if len(conv.ops) == 1 and conv.ops[0].layer is not None and conv.outputs == [conv.ops[0].node]:
                return conv.ops[0].layer
        if len(conv.outputs) != 1:
            raise ExportError("%s: forward returns %d values; a block returns one tensor"
                              % (label(path, m), len(conv.outputs)))
        lines = self.child_lines(path, m, conv, called)
        nparams = len([n for n in conv.graph.nodes if n.op == "placeholder"])
        pnames = ["x"] if nparams == 1 else ["x%d" % i for i in range(nparams)]
        taken = {n for n, _ in lines if n}
        body = forward_statements(conv, pnames, taken)
        return self.new_instance(path, m, type(m).__name__, lines, (pnames, body))

    def child_lines(self, path, m, conv, called):
        nargs = {}
        for op in conv.ops:
            if op.child:
                nargs[op.child] = len(op.inputs)
        lines = []
        for name, child in m._modules.items():
            if child is None:
                continue
            if name not in called:
                if has_state(child):   # a training-only head (GoogLeNet's aux1): no part of the eval model
                    self.dropped.append(join(path, name))
                continue
            check_name(path, m, name)
            lines.append((name, self.declaration(join(path, name), child, nargs.get(name, 1))))
        return lines

    def new_instance(self, path, m, base, lines, forward):
        inst = Inst(path, m, base, lines, forward)
        self.instances.append(inst)
        return inst

    # --- the model
    def model(self, name, inputs):
        """(blocks text, model body lines)."""
        m = self.root
        own = list(m._parameters) + list(m._buffers)
        if own:
            raise ExportError("%s: has parameters of its own (%s); in the layer language only layers have "
                              "parameters" % (label("", m), ", ".join(own)))
        if isinstance(m, nn.Sequential) and type(m).forward is nn.Sequential.forward:
            lines = [(None if n == str(i) else n, self.declaration(n, c)) for i, (n, c) in enumerate(m._modules.items())]
            forward = None
        else:
            conv = self.convert_forward("", m, len(inputs))
            stack = self.stack_lines(conv)
            if stack is not None:
                lines, forward = stack, None
            else:
                called = {op.child for op in conv.ops if op.child}
                lines = self.child_lines("", m, conv, called)
                taken = {n for n, _ in lines if n}
                pnames = [i[0] for i in inputs]
                forward = (pnames, forward_statements(conv, pnames, taken))
        return lines, forward

    def stack_lines(self, conv):
        """The model's lines when its forward calls its children one after the other, each once, else None."""
        placeholders = [n for n in conv.graph.nodes if n.op == "placeholder"]
        if len(placeholders) != 1 or len(conv.outputs) != 1:
            return None
        prev = placeholders[0]
        called = []
        for op in conv.ops:
            if not op.child or op.inputs != [prev]:
                return None
            prev = op.node
            called.append(op.child)
        if conv.outputs != [prev] or len(set(called)) != len(called):
            return None
        children = self.root._modules
        lines = []
        for pos, name in enumerate(called):
            if name.isdigit() and int(name) != pos:
                return None
            if not name.isdigit() and (not IDENT_RE.match(name) or name in BODY_KEYWORDS):
                return None
            lines.append((None if name.isdigit() else name, self.declaration(name, children[name])))
        self.dropped += [n for n, c in children.items() if c is not None and n not in called and has_state(c)]
        return lines

    # --- blocks: grouping instances into variants, and their parameters
    def resolve_blocks(self):
        variants = {}
        order = []
        for inst in self.instances:  # children complete before their parents
            key = (type(inst.module), inst.base_name,
                   tuple((n, expr_signature(e)) for n, e in inst.lines),
                   None if inst.forward is None else (tuple(inst.forward[0]), tuple(inst.forward[1])))
            v = variants.get(key)
            if v is None:
                v = Variant(inst.base_name)
                variants[key] = v
                order.append(v)
            v.instances.append(inst)
            inst.variant = v
        used = set(LANGUAGE_NAMES) | NN_KEYWORDS
        count = {}
        for v in order:
            count[v.base] = count.get(v.base, 0) + 1
            n = count[v.base]
            name = sanitize(v.base) + ("" if n == 1 else "_%d" % n)
            while name in used:
                name += "Block"
            used.add(name)
            v.name = name
            v.parametrize()
        return order


class Variant:
    """One block: instances of one class with one structure."""

    def __init__(self, base):
        self.base, self.instances, self.name = base, [], None

    def parametrize(self):
        per_instance = [[s for _, e in inst.lines for s in expr_slots(e, [])] for inst in self.instances]
        first = per_instance[0]
        columns = list(zip(*per_instance))
        params, by_values, decisions = [], {}, []
        line_names = {n for n, _ in self.instances[0].lines if n}
        for k, col in enumerate(columns):
            values = tuple(s.value for s in col)
            slot = first[k]
            if len(set(values)) == 1:
                decisions.append(None if slot.default is not None and values[0] == slot.default else str(values[0]))
                continue
            if values not in by_values:
                pname = slot.hint
                taken = {p for p, _ in params} | line_names | NN_KEYWORDS | {"x"}
                n = 2
                while pname in taken:
                    pname = "%s%d" % (slot.hint, n)
                    n += 1
                by_values[values] = pname
                params.append((pname, k))
            decisions.append(by_values[values])
        self.params = [p for p, _ in params]
        self.decisions = decisions
        for inst, slots in zip(self.instances, per_instance):
            inst.call_slots = [Slot(slots[k].value, p) for p, k in params]

    def text(self):
        inst = self.instances[0]
        slots = VariantSlots(self.decisions)
        out = []
        ex = inst.module
        where = "%s.%s" % (type(ex).__module__, type(ex).__qualname__)
        if type(ex) is nn.Sequential:
            where = "an nn.Sequential of named children"
        paths = [i.path for i in self.instances]
        shown = ", ".join(paths[:4]) + (", ..." if len(paths) > 4 else "")
        out.append("# %s: %d instance%s (%s)" % (where, len(paths), "" if len(paths) == 1 else "s", shown))
        out.append("block %s(%s) {" % (self.name, ", ".join(self.params)))
        out += body_lines(inst.lines, slots, "    ")
        out += forward_lines(inst.forward)
        out.append("}")
        return "\n".join(out) + "\n"


def forward_lines(forward):
    """The `forward(params) { ... }` section of a block or the model (forward: (param names, statements) or None)."""
    if forward is None:
        return []
    pnames, stmts = forward
    return ["", "    forward(%s) {" % ", ".join(pnames)] + ["        " + s for s in stmts] + ["    }"]


def body_lines(lines, slots, indent):
    out = []
    for name, e in lines:
        text = render_expr(e, slots, indent)
        comment = getattr(e, "comment", None)
        line = "%s%s%s" % (indent, "" if name is None else name + " = ", text)
        if comment:
            line += "  # " + comment
        out.append(line)
    return out


def check_name(path, m, name):
    if not IDENT_RE.match(name) or name in BODY_KEYWORDS:
        raise ExportError("%s: submodule '%s' cannot be named in the layer language (%s)"
                          % (label(path, m), name, "a keyword" if name in BODY_KEYWORDS else "not an identifier"))


def join(path, name):
    return "%s.%s" % (path, name) if path else name


def camel(name):
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[^A-Za-z0-9]+", name) if p) or "Block"


def sanitize(name):
    name = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return name if IDENT_RE.match(name) else "B" + name


# ---------------------------------------------------------------- loading the module

def load_object(spec):
    """MODULE.ATTR (torchvision.models.resnet18), MODULE:ATTR, FILE.py:ATTR, or a whole-module FILE.pt."""
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())   # as `python3 -m` does: the classes of a saved module, MODULE:ATTR
    if os.path.isfile(spec) and not spec.endswith(".py"):
        try:
            return torch.load(spec, map_location="cpu"), os.path.splitext(os.path.basename(spec))[0]
        except Exception as e:
            raise ExportError("%s: torch.load failed: %s: %s" % (spec, type(e).__name__, e))
    if ":" in spec:
        where, attr = spec.rsplit(":", 1)
        if where.endswith(".py") or os.path.isfile(where):
            if not os.path.isfile(where):
                raise ExportError("%s: no such file" % where)
            sys.path.insert(0, os.path.dirname(os.path.abspath(where)))
            mspec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(where))[0], where)
            mod = importlib.util.module_from_spec(mspec)
            sys.modules[mspec.name] = mod
            try:
                mspec.loader.exec_module(mod)
            except Exception as e:
                raise ExportError("%s: importing it failed: %s: %s" % (where, type(e).__name__, e))
        else:
            mod = import_module(where, spec)
        return get_attr_path(mod, attr, spec), attr.split(".")[-1]
    parts = spec.split(".")
    for k in range(len(parts) - 1, 0, -1):
        try:
            mod = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        return get_attr_path(mod, ".".join(parts[k:]), spec), parts[-1]
    raise ExportError("%s: not a file, a module.attribute or module:attribute that imports" % spec)


def import_module(name, spec):
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise ExportError("%s: cannot import %s: %s" % (spec, name, e))


def get_attr_path(mod, attr, spec):
    obj = mod
    for a in attr.split("."):
        if not hasattr(obj, a):
            raise ExportError("%s: %s has no attribute %s" % (spec, getattr(obj, "__name__", obj), a))
        obj = getattr(obj, a)
    return obj


def make_module(spec, kwargs, state_dict_path):
    obj, stem = load_object(spec)
    if isinstance(obj, nn.Module):
        if kwargs:
            raise UsageError("--kwargs: %s is a module already, not a class or factory" % spec)
        m = obj
    elif isinstance(obj, dict):
        raise ExportError("%s holds a state_dict, not a module: give the module's class or factory and pass the "
                          "file with --state-dict" % spec)
    elif callable(obj):
        try:
            m = obj(**kwargs)
        except Exception as e:
            raise ExportError("%s(**%r) failed: %s: %s" % (spec, kwargs, type(e).__name__, e))
        if not isinstance(m, nn.Module):
            raise ExportError("%s returned a %s, not an nn.Module" % (spec, type(m).__name__))
    else:
        raise ExportError("%s is a %s, not an nn.Module, a class or a factory" % (spec, type(obj).__name__))
    if state_dict_path:
        try:
            sd = torch.load(state_dict_path, map_location="cpu")
        except Exception as e:
            raise ExportError("%s: torch.load failed: %s: %s" % (state_dict_path, type(e).__name__, e))
        if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
            sd = sd["state_dict"]
        if not isinstance(sd, dict):
            raise ExportError("%s: holds a %s, not a state_dict" % (state_dict_path, type(sd).__name__))
        try:
            m.load_state_dict(sd, strict=True)
        except RuntimeError as e:
            raise ExportError("%s: does not fit the module: %s" % (state_dict_path, str(e).strip()))
    return m, stem


# ---------------------------------------------------------------- inputs, the sample run

def parse_shape(text):
    dims = [d.strip() for d in text.split(",")]
    out = []
    for k, d in enumerate(dims):
        if d.isdigit() and int(d) > 0:
            out.append(int(d))
        elif k == 0 and IDENT_RE.match(d) and d not in NN_KEYWORDS:
            out.append(d)
        else:
            raise UsageError("--input-shape %s: dimensions are positive integers; only the first may be a name "
                             "(the batch, e.g. N,3,32,32)" % text)
    return out


def first_layer(m):
    for sub in m.modules():
        if layer_writer(sub) is not None:
            return sub
    return None


def make_inputs(model, shapes, dtypes, batch, seed):
    gen = torch.Generator().manual_seed(seed)
    tensors, decls = [], []
    first = first_layer(model)
    for k, dims in enumerate(shapes):
        dtype = dtypes[k] if k < len(dtypes) else None
        if dtype is None:
            dtype = "i64" if k == 0 and isinstance(first, (nn.Embedding, nn.EmbeddingBag)) else "f32"
        shape = [batch if isinstance(d, str) else d for d in dims]
        if dtype == "i64":
            emb = first if isinstance(first, (nn.Embedding, nn.EmbeddingBag)) else None
            high = emb.num_embeddings if emb is not None else 2
            tensors.append(torch.randint(0, high, shape, generator=gen))
        else:
            tensors.append(torch.randn(shape, generator=gen))
        decls.append((dims, dtype))
    return tensors, decls


def sample_run(model, inputs):
    """Runs the model once, recording each module's first call's arguments; the state is put back
    afterwards (Embedding(max_norm=...) renormalises its rows in place)."""
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()
             if not isinstance(v, nn.parameter.UninitializedParameter) and not isinstance(v, nn.parameter.UninitializedBuffer)}
    records = {}

    def record(mod, args):
        records.setdefault(id(mod), args)   # returns None: the arguments are not replaced

    hooks = [sub.register_forward_pre_hook(record) for sub in model.modules()]
    try:
        with torch.no_grad():
            out = model(*inputs)
    except Exception as e:
        raise ExportError("the model fails on the sample input %s: %s: %s"
                          % (", ".join(str(list(t.shape)) for t in inputs), type(e).__name__, e))
    finally:
        for h in hooks:
            h.remove()
    with torch.no_grad():
        current = model.state_dict()
        for k, v in saved.items():
            if current[k].shape == v.shape:
                current[k].copy_(v)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    if not all(isinstance(o, torch.Tensor) for o in outs):
        raise ExportError("the model returns %s; the layer language returns tensors" % type(out).__name__)
    return outs, records


# ---------------------------------------------------------------- files

ST_DTYPE = {torch.int64: ("I64", torch.int64)}


def safetensors_bytes(state):
    header, blobs, offset = {}, [], 0
    for key, t in state.items():
        t = t.detach().cpu().contiguous()
        if t.is_floating_point():
            tag, t = "F32", t.to(torch.float32)
        elif t.dtype == torch.int64:
            tag = "I64"
        else:
            raise ExportError("state_dict tensor %s has dtype %s, which layerc does not read" % (key, t.dtype))
        data = t.numpy().tobytes(order="C")
        header[key] = {"dtype": tag, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + b"".join(blobs)


def npy_bytes(t):
    import io
    import numpy as np
    f = io.BytesIO()
    np.save(f, np.ascontiguousarray(t.detach().cpu().numpy()), allow_pickle=False)
    return f.getvalue()


def write_atomically(files):
    """Every file or none: each is written under a temporary name and renamed at the end."""
    temps = []
    try:
        for path, blob in files:
            d = os.path.dirname(os.path.abspath(path))
            os.makedirs(d, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=d, prefix=".torch2nn-")
            temps.append((tmp, path))
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
        for tmp, path in temps:
            os.replace(tmp, path)
    except OSError as e:
        for tmp, _ in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise ExportError("cannot write %s: %s" % (e.filename or "", e.strerror or e))


# ---------------------------------------------------------------- the self-check with layerc

def check_with_layerc(layerc, text, state, outputs, batch_name, batch):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.nn")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([layerc, "shapes", "-O0", "--format", "json", path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True)
    if r.returncode != 0:
        raise ExportError("layerc refuses the exported text (a bug of torch2nn.py):\n%s" % r.stderr.rstrip())
    doc = json.loads(r.stdout)
    theirs = {}
    for layer in doc["layers"]:
        for t in layer.get("state_dict", []):
            theirs.setdefault(t["key"], t["shape"])
    ours = {k: list(v.shape) for k, v in state.items()}
    if theirs != ours:
        only_torch = sorted(set(ours) - set(theirs))
        only_layerc = sorted(set(theirs) - set(ours))
        shapes = sorted(k for k in set(ours) & set(theirs) if ours[k] != theirs[k])
        raise ExportError("the exported text and the state_dict differ (a bug of torch2nn.py): only in PyTorch %s, "
                          "only in layerc %s, shapes differ %s" % (only_torch[:5], only_layerc[:5], shapes[:5]))
    found = []
    for name in doc["outputs"]:
        layer = [l for l in doc["layers"] if l["name"] == name][-1]
        found.append([batch if d == doc.get("batch") else d for d in layer["output_shape"]])
    want = [list(o.shape) for o in outputs]
    if found != want:
        raise ExportError("layerc computes output shapes %s, PyTorch %s (a bug of torch2nn.py)" % (found, want))
    return [l for l in r.stderr.splitlines() if l.strip()]


def find_layerc(arg):
    if arg:
        return arg
    p = os.path.join(ROOT, "layerc")
    return p if os.access(p, os.X_OK) else None


# ---------------------------------------------------------------- main

def build_text(ex, spec, model_name, input_decls, input_names, model):
    lines, forward = ex.model(model_name, list(zip(input_names, input_decls)))
    variants = ex.resolve_blocks()
    out = ["# Exported by tools/torch2nn.py from %s (%s)." % (spec, class_name(model)),
           "# Weights: the module's state_dict, under the same keys.", ""]
    for v in variants:
        out.append(v.text())
    out.append("model %s {" % model_name)
    for name, (dims, dtype) in zip(input_names, input_decls):
        out.append("    input %s: %s[%s]" % (name, dtype, ", ".join(str(d) for d in dims)))
    out += body_lines(lines, LiteralSlots(), "    ")
    out += forward_lines(forward)
    out.append("}")
    return "\n".join(out) + "\n"


def input_names_of(model, n):
    try:
        params = [p.name for p in inspect.signature(model.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = []
    for k in range(n):
        p = params[k] if k < len(params) else None
        if p is None or p in NN_KEYWORDS or not IDENT_RE.match(p) or p in names or p == "input":
            p = "x" if n == 1 else "x%d" % k
        names.append(p)
    return names


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="torch2nn.py", description="Export a PyTorch nn.Module to layerc's layer "
                                 "language (.nn) and its state_dict to .safetensors.")
    ap.add_argument("module", metavar="MODULE_OR_FILE",
                    help="package.module.factory (torchvision.models.resnet18), package.module:Class, FILE.py:attr, "
                         "or a whole module saved with torch.save (FILE.pt)")
    ap.add_argument("-o", "--output", metavar="OUT.nn", help="the .nn file (default: NAME.nn, NAME from MODULE)")
    ap.add_argument("--weights", metavar="OUT.safetensors", help="the weights (default: OUT with .safetensors)")
    ap.add_argument("--input-shape", action="append", default=[], metavar="N,3,32,32",
                    help="the input's shape, first dimension a number or a name (a run-time batch); once per input")
    ap.add_argument("--input-dtype", action="append", default=[], choices=["f32", "i64"],
                    help="once per input (default: i64 when the model starts with an Embedding, else f32)")
    ap.add_argument("--kwargs", default="{}", help="arguments of the class or factory, a Python dict literal")
    ap.add_argument("--state-dict", metavar="FILE.pt", help="load these weights into the module first")
    ap.add_argument("--name", help="the model's name in the .nn file (default: the module's class name)")
    ap.add_argument("--example-io", metavar="DIR",
                    help="also write DIR/input.npy and DIR/expected.npy (the module's output) for layerc test")
    ap.add_argument("--batch", type=int, default=SAMPLE_BATCH, help="the batch of the sample run for a named batch")
    ap.add_argument("--seed", type=int, default=0, help="seed of the sample input")
    ap.add_argument("--layerc", help="the layerc that checks the exported text (default: ./layerc when built)")
    ap.add_argument("--no-check", action="store_true", help="do not check the text with layerc")
    args = ap.parse_args(argv)
    if not args.input_shape:
        raise UsageError("--input-shape is required: the .nn file's input line needs it (e.g. --input-shape N,3,224,224)")
    try:
        args.kwargs = ast.literal_eval(args.kwargs)
    except (ValueError, SyntaxError):
        raise UsageError("--kwargs %s: not a Python dict literal" % args.kwargs)
    if not isinstance(args.kwargs, dict):
        raise UsageError("--kwargs: not a dict")
    if args.name is not None and (not IDENT_RE.match(args.name) or args.name in NN_KEYWORDS):
        raise UsageError("--name %s: not an identifier" % args.name)
    if args.batch < 1:
        raise UsageError("--batch must be at least 1")
    return args


class Exported:
    """What export() found: the .nn text, the state_dict to save, the sample input and the module's output on it,
    the submodules left out (never called) and what layerc said when checking the text."""

    def __init__(self, text, state, inputs, outputs, dropped, notes, checked):
        self.text, self.state, self.inputs, self.outputs = text, state, inputs, outputs
        self.dropped, self.notes, self.checked = dropped, notes, checked


def export(model, shapes, dtypes=(), name=None, source=None, batch=SAMPLE_BATCH, seed=0, layerc=None, inputs=None):
    """Export an nn.Module (put in eval mode).  shapes: one list of dims per input (the first may be a name);
    dtypes: "f32"/"i64" per input (default: guessed); inputs: the sample input tensors (default: drawn with seed);
    layerc: the layerc that checks the text (None: no check).  Raises ExportError."""
    model.eval()
    drawn, decls = make_inputs(model, shapes, list(dtypes), batch, seed)
    inputs = list(inputs) if inputs is not None else drawn
    outputs, records = sample_run(model, inputs)
    name = name or sanitize(type(model).__name__)
    if name in NN_KEYWORDS:
        name += "Model"
    ex = Exporter(model, records)
    text = build_text(ex, source or class_name(model), name, decls, input_names_of(model, len(shapes)), model)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()
             if not any(k.startswith(p + ".") for p in ex.dropped)}
    notes = []
    if layerc:
        batch_names = {d[0] for d, _ in decls if isinstance(d[0], str)}
        notes = check_with_layerc(layerc, text, state, outputs, next(iter(batch_names), None),
                                  inputs[0].shape[0] if batch_names else batch)
    return Exported(text, state, inputs, outputs, ex.dropped, notes, bool(layerc))


def run(argv):
    args = parse_args(argv)
    shapes = [parse_shape(s) for s in args.input_shape]
    torch.manual_seed(args.seed)
    model, stem = make_module(args.module, args.kwargs, args.state_dict)
    layerc = None if args.no_check else find_layerc(args.layerc)
    r = export(model, shapes, args.input_dtype, args.name, args.module, args.batch, args.seed, layerc)
    out = args.output or stem + ".nn"
    weights = args.weights or (out[:-3] if out.endswith(".nn") else out) + ".safetensors"
    files = [(out, r.text.encode()), (weights, safetensors_bytes(r.state))]
    if args.example_io:
        many = len(r.inputs) > 1
        for k, t in enumerate(r.inputs):
            files.append((os.path.join(args.example_io, "input%s.npy" % (k if many else "")), npy_bytes(t)))
        many = len(r.outputs) > 1
        for k, t in enumerate(r.outputs):
            files.append((os.path.join(args.example_io, "expected%s.npy" % (k if many else "")), npy_bytes(t)))
    write_atomically(files)
    if r.dropped:
        print("note: %s: never called by forward in eval mode, left out of the .nn file and the weights"
              % ", ".join(r.dropped), file=sys.stderr)
    for n in r.notes:
        print("layerc: %s" % n, file=sys.stderr)
    print("wrote %s and %s (%d tensors)%s%s" % (out, weights, len(r.state),
                                                " and %s" % args.example_io if args.example_io else "",
                                                "" if r.checked else "; not checked (no ./layerc built)"))
    return 0


def main(argv):
    try:
        return run(argv)
    except UsageError as e:
        print("torch2nn.py: error: %s" % e, file=sys.stderr)
        return 2
    except ExportError as e:
        print("torch2nn.py: error: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
