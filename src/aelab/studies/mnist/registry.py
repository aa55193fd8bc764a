"""The MNIST study's parts, in report order. Adding a part: one module with ``PART``, one line here."""

from aelab.studies.mnist import ae, compare, dae, explore, l2, manifold
from aelab.studies.parts import Registry

REGISTRY = Registry(
    [
        ae.PART,
        dae.PART,
        manifold.PART,
        l2.PART,
        explore.PART,
        compare.PART,
    ]
)
