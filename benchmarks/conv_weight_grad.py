"""Weight gradient of AttnCNN's 3x3 convolutions: oneDNN's kernel against
one matrix product per kernel tap, on bfloat16 tensors of the default net's
shapes at batch 2000 (seconds, best of 3; models.cpu_kernels.Conv2D).

Usage: python benchmarks/conv_weight_grad.py (output: conv_weight_grad.md).
Columns: forward convolution, oneDNN's weight gradient, extract_patches +
one product, nine shifted products (what cpu_kernels.Conv2D does), and the
largest difference of the two product forms from oneDNN's, relative to its
largest value.
"""
import os, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import tensorflow as tf
N = 2000
shapes = {"1a": (31, 24, 112), "1b": (15, 112, 112), "2a": (15, 112, 352), "2b": (7, 352, 352), "3a": (7, 352, 352), "3b": (3, 352, 352)}
def timeit(f, *a):
    f(*a)
    best = 1e9
    for _ in range(3):
        t = time.perf_counter(); r = f(*a); _ = r.numpy() if hasattr(r, "numpy") else None
        best = min(best, time.perf_counter() - t)
    return best
for name, (hw, cin, cout) in shapes.items():
    x = tf.cast(tf.random.normal((N, hw, hw, cin)), tf.bfloat16)
    dy = tf.cast(tf.random.normal((N, hw, hw, cout)), tf.bfloat16)
    w = tf.cast(tf.random.normal((3, 3, cin, cout)), tf.bfloat16)
    native = tf.function(lambda x, dy: tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=[3, 3, cin, cout], out_backprop=dy, strides=[1,1,1,1], padding="SAME"))
    def patches_mm(x, dy):
        p = tf.image.extract_patches(x, [1,3,3,1], [1,1,1,1], [1,1,1,1], "SAME")
        p = tf.reshape(p, (-1, 9 * cin))
        g = tf.matmul(p, tf.reshape(dy, (-1, cout)), transpose_a=True)
        return tf.reshape(g, (3, 3, cin, cout))
    def shifts_mm(x, dy):
        xp = tf.pad(x, [[0,0],[1,1],[1,1],[0,0]])
        d = tf.reshape(dy, (-1, cout))
        gs = [tf.matmul(tf.reshape(xp[:, i:i+hw, j:j+hw, :], (-1, cin)), d, transpose_a=True) for i in range(3) for j in range(3)]
        return tf.reshape(tf.stack(gs), (3, 3, cin, cout))
    fwd = tf.function(lambda x, w: tf.nn.conv2d(x, w, 1, "SAME"))
    a = native(x, dy); b = tf.function(patches_mm)(x, dy); c = tf.function(shifts_mm)(x, dy)
    err = float(tf.reduce_max(tf.abs(tf.cast(a, tf.float32) - tf.cast(b, tf.float32))) / tf.reduce_max(tf.abs(tf.cast(a, tf.float32))))
    err2 = float(tf.reduce_max(tf.abs(tf.cast(a, tf.float32) - tf.cast(c, tf.float32))) / tf.reduce_max(tf.abs(tf.cast(a, tf.float32))))
    print(name, f"fwd {timeit(fwd, x, w):.3f}  native wgrad {timeit(native, x, dy):.3f}  patches {timeit(tf.function(patches_mm), x, dy):.3f}  shifts {timeit(tf.function(shifts_mm), x, dy):.3f}  relerr {err:.4f} {err2:.4f}", flush=True)
