"""test_layerc.py - the Python binding (python/layerc.py) against PyTorch's goldens and `layerc run`.

    python3 tests/python/test_layerc.py DIR

DIR holds what tests/run.sh (suite `python`) built there: a library per model (digits.so: the
trained CNN of examples/digits, checked against PyTorch's logits committed there)
and `layerc run`'s outputs for the same inputs (NAME.so, NAME_run*.npy; see
suite_python).  The PyTorch goldens are read from tests/golden/outputs.  Ends
with "python: N passed, M failed".  Needs numpy, never torch.
"""

import json
import os
import sys
import threading
import traceback

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "python"))
import layerc  # noqa: E402

GOLDEN = os.path.join(ROOT, "tests", "golden", "outputs")
RESULTS = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    if ok:
        RESULTS["passed"] += 1
    else:
        RESULTS["failed"] += 1
        print(f"FAIL {name}" + (f": {detail}" if detail else ""))


def check_raises(name, cls, message, call):
    """call() must raise cls (and through it, the built-in the error refines) with exactly this message
    (any message when it is None)."""
    try:
        call()
    except Exception as e:  # noqa: BLE001 - the type is what is checked
        ok = type(e) is cls and (message is None or str(e) == message)
        check(name, ok, f"got {type(e).__name__}: {e}\n    want {cls.__name__}: {message}")
        return e
    check(name, False, f"no exception; want {cls.__name__}: {message}")
    return None


def golden(case):
    d = os.path.join(GOLDEN, case)
    with open(os.path.join(d, "case.json")) as f:
        tol = json.load(f)
    return np.load(os.path.join(d, "input.npy")), np.load(os.path.join(d, "expected.npy")), tol


def close_to(name, got, expected, tol):
    ok = got.shape == expected.shape and np.allclose(got, expected, atol=tol["atol"], rtol=tol["rtol"])
    check(name, ok, f"shape {got.shape} vs {expected.shape}, max |diff| "
          f"{np.abs(got - expected).max() if got.shape == expected.shape else '-'}")


def identical(name, got, expected):
    ok = got.shape == expected.shape and got.dtype == expected.dtype and np.array_equal(got, expected)
    check(name, ok, f"{got.dtype}{got.shape} vs {expected.dtype}{expected.shape}")


def test_cifar10(dir):
    x, expected, tol = golden("example_cifar10")
    model = layerc.load(os.path.join(dir, "cifar10.so"))
    f32 = np.dtype(np.float32)
    check("cifar10 name", model.name == "Cifar10", model.name)
    check("cifar10 inputs", model.inputs == (layerc.TensorSpec("x", (None, 3, 32, 32), f32),), repr(model.inputs))
    check("cifar10 outputs", model.outputs == (layerc.TensorSpec("fc2", (None, 10), f32),), repr(model.outputs))
    check("cifar10 layers", model.layers[-1] == ("fc2 (Linear)", (None, 10)), repr(model.layers))
    y = model(x)
    close_to("cifar10 vs PyTorch", y, expected, tol)
    identical("cifar10 vs layerc run", y, np.load(os.path.join(dir, "cifar10_run.npy")))
    identical("cifar10 threads=2", model.run(x, threads=2), y)
    check("cifar10 threads property", model.threads == 2)
    model.set_threads(1)
    # Batch sizes: one sample at a time, and a batch of 7 (the golden's two samples among random ones).
    for i in range(len(x)):
        close_to(f"cifar10 batch 1 sample {i}", model(x[i : i + 1]), expected[i : i + 1], tol)
    big = np.random.default_rng(1).standard_normal((7, 3, 32, 32)).astype(np.float32)
    big[3], big[5] = x[0], x[1]
    y7 = model(big)
    check("cifar10 batch 7 shape", y7.shape == (7, 10), y7.shape)
    close_to("cifar10 batch 7 vs PyTorch", y7[[3, 5]], expected, tol)
    empty = model(np.zeros((0, 3, 32, 32), np.float32))
    check("cifar10 batch 0", empty.shape == (0, 10) and empty.dtype == np.float32, empty.shape)
    # Non-contiguous and byte-swapped arrays are copied, not refused.
    wide = np.zeros((2, 3, 32, 64), np.float32)
    wide[..., ::2] = x
    identical("cifar10 strided input", model(wide[..., ::2]), y)
    identical("cifar10 Fortran-order input", model(np.asfortranarray(x)), y)
    identical("cifar10 big-endian input", model(x.astype(">f4")), y)
    identical("cifar10 list input", model(x.tolist()), y)
    identical("cifar10 input dict", model({"x": x}), y)
    identical("cifar10 input keyword", model(x=x), y)
    out = model.run(x, as_dict=True)
    check("cifar10 as_dict", list(out) == ["fc2"] and np.array_equal(out["fc2"], y), repr(out.keys()))
    # Errors: the exception's type and exact message.
    e = check_raises("cifar10 float64", layerc.DTypeError,
                     "Cifar10 input 'x': expected float32, got float64 (convert with .astype(numpy.float32))",
                     lambda: model(x.astype(np.float64)))
    check("cifar10 DTypeError is a TypeError", isinstance(e, TypeError))
    check_raises("cifar10 int input", layerc.DTypeError,
                 "Cifar10 input 'x': expected float32, got int64 (convert with .astype(numpy.float32))",
                 lambda: model(x.astype(np.int64)))
    e = check_raises("cifar10 wrong shape", layerc.ShapeError,
                     "Cifar10 input 'x': expected shape (N, 3, 32, 32), got (2, 3, 32, 31)",
                     lambda: model(x[..., :31]))
    check("cifar10 ShapeError is a ValueError", isinstance(e, ValueError))
    check_raises("cifar10 one sample without its batch", layerc.ShapeError,
                 "Cifar10 input 'x': expected shape (N, 3, 32, 32), got (3, 32, 32): "
                 "one sample needs the batch dimension too (x[None])", lambda: model(x[0]))
    check_raises("cifar10 no input", layerc.InputError, "Cifar10 takes 1 input (x), got 0", lambda: model())
    check_raises("cifar10 two inputs", layerc.InputError, "Cifar10 takes 1 input (x), got 2", lambda: model(x, x))
    e = check_raises("cifar10 ragged list", layerc.ShapeError, None, lambda: model([[1.0, 2.0], [3.0]]))
    check("cifar10 ragged list message", e is not None and str(e).startswith(
        "Cifar10 input 'x': cannot make an array of this list: "), str(e))
    check_raises("cifar10 string input", layerc.DTypeError, "Cifar10 input 'x': expected float32, got str of <U3",
                 lambda: model("abc"))
    e = check_raises("cifar10 threads 0", layerc.OutOfRangeError, "Cifar10: thread count must be 1 to 256, got 0",
                     lambda: model.run(x, threads=0))
    check("cifar10 threads 0 status", e is not None and e.status_name == "LAYERC_ERR_THREADS" and isinstance(e, ValueError))
    check_raises("cifar10 threads not an int", TypeError, "Cifar10: threads must be an int, got str",
                 lambda: model.set_threads("2"))
    identical("cifar10 still runs after errors", model(x), y)
    # One Model shared by Python threads: runs take turns on its context.
    results = [None] * 4
    def work(i):
        results[i] = model(x)
    workers = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    check("cifar10 shared by 4 Python threads", all(r is not None and np.array_equal(r, y) for r in results))
    model.close()
    check_raises("cifar10 closed", layerc.LayercError, "Cifar10: the model is closed", lambda: model(x))


def test_two_towers(dir):
    model = layerc.load(os.path.join(dir, "two_towers.so"))
    a = np.load(os.path.join(ROOT, "tests", "build", "two_towers_a.npy"))
    b = np.load(os.path.join(ROOT, "tests", "build", "two_towers_b.npy"))
    check("two_towers input names", [s.name for s in model.inputs] == ["a", "b"], repr(model.inputs))
    check("two_towers outputs", [(s.name, s.shape) for s in model.outputs] == [("bil", (None, 4)), ("add", (None, 16))],
          repr(model.outputs))
    scores, sums = model(a, b)
    identical("two_towers output 0 vs layerc run", scores, np.load(os.path.join(dir, "two_towers_run0.npy")))
    identical("two_towers output 1 vs layerc run", sums, np.load(os.path.join(dir, "two_towers_run1.npy")))
    named = model.run(b=b, a=a, as_dict=True)
    check("two_towers keywords, as_dict", list(named) == ["bil", "add"] and np.array_equal(named["bil"], scores)
          and np.array_equal(named["add"], sums), repr(named.keys()))
    s2, t2 = model.run({"a": a, "b": b}, threads=2)
    check("two_towers dict input, threads=2", np.array_equal(s2, scores) and np.array_equal(t2, sums))
    s1, t1 = model(a[1:2], b[1:2])
    check("two_towers batch 1", s1.shape == (1, 4) and np.allclose(s1, scores[1:2], atol=1e-6, rtol=1e-5)
          and np.allclose(t1, sums[1:2], atol=1e-6, rtol=1e-5))
    check_raises("two_towers batches differ", layerc.ShapeError,
                 "TwoTowers: the inputs share one batch, but 'a' has 3 samples, 'b' has 1 sample",
                 lambda: model(a, b[:1]))
    check_raises("two_towers one input", layerc.InputError, "TwoTowers takes 2 inputs (a, b), got 1", lambda: model(a))
    check_raises("two_towers missing keyword", layerc.InputError,
                 "TwoTowers: input 'b' is missing: it takes 2 inputs (a, b)", lambda: model(a=a))
    check_raises("two_towers unknown keyword", layerc.InputError,
                 "TwoTowers has no input 'c': it takes 2 inputs (a, b)", lambda: model(a=a, c=b))
    check_raises("two_towers positional and keyword", layerc.InputError,
                 "TwoTowers: give the inputs either in order or by name, not both", lambda: model(a, b=b))
    check_raises("two_towers second input's shape", layerc.ShapeError,
                 "TwoTowers input 'b': expected shape (N, 6), got (3, 8)", lambda: model(a, a))


def test_token_ids(dir):
    x, expected, tol = golden("embedding_padding_idx")
    model = layerc.load(os.path.join(dir, "embedding.so"))
    check("embedding input dtype", model.inputs[0].dtype == np.int64 and model.inputs[0].shape == (None, 5),
          repr(model.inputs))
    check("embedding id limit", model.input_id_limits == (20,), repr(model.input_id_limits))
    y = model(x)
    close_to("embedding vs PyTorch", y, expected, tol)
    identical("embedding vs layerc run", y, np.load(os.path.join(dir, "embedding_run.npy")))
    identical("embedding list of ints", model(x.tolist()), y)
    check_raises("embedding int32 ids", layerc.DTypeError,
                 "EmbeddingPaddingIdx input 'x': expected int64 token ids, got int32 (convert with .astype(numpy.int64))",
                 lambda: model(x.astype(np.int32)))
    check_raises("embedding float ids", layerc.DTypeError,
                 "EmbeddingPaddingIdx input 'x': expected int64 token ids, got float32 (convert with .astype(numpy.int64))",
                 lambda: model(x.astype(np.float32)))
    check_raises("embedding list of floats", layerc.DTypeError,
                 "EmbeddingPaddingIdx input 'x': expected int64 token ids, got list of float64",
                 lambda: model([[0.5] * 5]))
    tokens = layerc.load(os.path.join(dir, "token_ids.so"))
    e = check_raises("token id out of range", layerc.OutOfRangeError,
                     "Tokens: token id 25 at input[1][2] is out of range: the embedding has 20 rows, ids 0 to 19",
                     lambda: tokens(np.load(os.path.join(ROOT, "tests", "build", "bad_ids.npy"))))
    check("token id error: status, ValueError", e is not None and e.status == 5 and e.status_name == "LAYERC_ERR_INPUT"
          and isinstance(e, ValueError) and isinstance(e, layerc.RunError))
    check_raises("negative token id", layerc.OutOfRangeError,
                 "Tokens: token id -4 at input[0][3] is out of range: the embedding has 20 rows, ids 0 to 19",
                 lambda: tokens(np.load(os.path.join(ROOT, "tests", "build", "negative_id.npy"))))
    good = np.load(os.path.join(ROOT, "tests", "build", "good_ids.npy"))
    identical("token ids after an error", tokens(good), np.load(os.path.join(dir, "token_ids_run.npy")))


def test_fixed_batch(dir):
    x, expected, tol = golden("example_tutorial_conv")
    model = layerc.load(os.path.join(dir, "tutorial_conv.so"))
    check("fixed batch shapes", model.inputs[0].shape == (2, 3, 32, 32) and model.outputs[0].shape == (2, 6, 30, 30),
          repr(model.inputs + model.outputs))
    y = model.run(x, threads=2)
    close_to("fixed batch vs PyTorch", y, expected, tol)
    check_raises("fixed batch, another batch", layerc.ShapeError,
                 "TutorialConv input 'x': expected shape (2, 3, 32, 32), got (3, 3, 32, 32): the model's batch is fixed at 2",
                 lambda: model(np.zeros((3, 3, 32, 32), np.float32)))
    check_raises("fixed batch, one sample", layerc.ShapeError,
                 "TutorialConv input 'x': expected shape (2, 3, 32, 32), got (3, 32, 32)", lambda: model(x[0]))


def test_digits(dir):
    """The trained digits CNN (examples/digits) against PyTorch's logits on its 360 test images."""
    data = os.path.join(ROOT, "examples", "digits")
    images = np.load(os.path.join(data, "test_images.npy"))
    torch_logits = np.load(os.path.join(data, "pytorch_logits.npy"))
    model = layerc.load(os.path.join(dir, "digits.so"))
    logits = model(images)
    close_to("digits vs PyTorch's logits", logits, torch_logits, {"atol": 1e-4, "rtol": 1e-4})
    predictions = logits.argmax(axis=1)
    check("digits: PyTorch's predictions", np.array_equal(predictions, np.load(os.path.join(data, "pytorch_predictions.npy"))))
    accuracy = (predictions == np.load(os.path.join(data, "test_labels.npy"))).mean()
    check("digits accuracy", abs(accuracy - 359 / 360) < 1e-9, accuracy)
    identical("digits threads=2", model.run(images, threads=2), logits)


def test_load_errors(dir):
    check_raises("load a missing file", layerc.LoadError, "cannot open '/nonexistent/lib.so': no such file",
                 lambda: layerc.load("/nonexistent/lib.so"))
    plain = os.path.join(dir, "not_layerc.so")
    e = check_raises("load a library without layerc_model", layerc.LoadError,
                     f"'{plain}' is not a layerc library: it has no layerc_model() "
                     "(build one with `layerc build MODEL.nn -o LIB.so`)", lambda: layerc.load(plain))
    check("LoadError is an OSError", isinstance(e, OSError))
    npy = os.path.join(dir, "cifar10_run.npy")
    try:
        layerc.load(npy)
        check("load a file that is not a library", False, "no exception")
    except layerc.LoadError as e:
        check("load a file that is not a library", str(e).startswith(f"cannot load '{npy}': "), str(e))


def main():
    dir = sys.argv[1]
    for test in (test_cifar10, test_two_towers, test_token_ids, test_fixed_batch, test_digits, test_load_errors):
        try:
            test(dir)
        except Exception:  # noqa: BLE001 - an unexpected error fails the test, the others still run
            check(test.__name__, False, traceback.format_exc())
    print(f"python: {RESULTS['passed']} passed, {RESULTS['failed']} failed")
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
