"""Reproduction (run as a script): registering a hook on a view of a leaf that was updated in place since the view
was made crashes the process with a segfault on torch 2.13.0 and 2.14.1 (CPU), within a few thousand rounds;
PyTorch issue 196459. Exit code 0 and "no crash" where the engine is fixed."""

import torch

if __name__ == "__main__":
    x = torch.tensor([[0.3, -1.2, 2.0], [0.5, 0.25, -0.75]], dtype=torch.float64, requires_grad=True)
    for _ in range(3000):
        v = x.t()
        with torch.no_grad():
            x.mul_(1.0)
        v.register_hook(lambda grad: None)
    print("no crash")
