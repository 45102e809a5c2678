"""HIPS autograd: np.where's VJP returns the gradient at the broadcast shape, not its operand's.

    python reproductions/autograd/where_broadcast.py    (exits 1 while the bug is there)

where(c, a, b) with a of shape [1, 3] and c, b of shape [2, 1] has shape [2, 3]. The gradient of
sum(where(c, a, b) * w) with respect to a must have a's shape [1, 3]; autograd returns [2, 3]. Alone the wrong
shape goes unnoticed when autograd later sums it into the input; added to a gradient of the right shape from another
use of a, it broadcasts and is then summed: a's gradient counts the other use twice (case
derivatives/where-broadcast.yaml).
"""

import sys

import autograd.numpy as anp
import numpy as np
from autograd import grad

c = np.array([[1.0], [0.0]])
a = np.array([[1.0, 2.0, 3.0]])
b = np.array([[4.0], [5.0]])
w = np.array([[1.0, 10.0, 100.0], [1000.0, 10000.0, 100001.0]])
v = np.array([[7.0, 0.5, -2.0]])

alone = grad(lambda x: anp.sum(anp.where(c > 0.5, x, b) * w))(a)
print("gradient of where alone, shape", alone.shape, "(a has shape", a.shape, ")")
twice = grad(lambda x: anp.sum(anp.where(c > 0.5, x, b) * w) + anp.sum(x * v))(a)
expected = w[:1] + v
print("with a second use of a:", twice, "expected", expected)
sys.exit(0 if alone.shape == a.shape and np.allclose(twice, expected) else 1)
