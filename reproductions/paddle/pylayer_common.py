"""PyLayer subclasses from (forward, backward) functions, for the reproductions."""
from common import paddle


def layer(name, forward, backward):
    return type(name, (paddle.autograd.PyLayer,), {"forward": staticmethod(forward), "backward": staticmethod(backward)})
