"""The dogs study's parts, in report order. Adding a part: one module with ``PART``, one line here."""

from aelab.studies.dogs import ae, channel, gauss, generation, noisy, perturb, samples
from aelab.studies.parts import Registry

REGISTRY = Registry(
    [
        ae.PART,
        samples.PART,
        gauss.PART,
        perturb.PART,
        noisy.PART,
        generation.PART,
        channel.CHANNEL,
        channel.CHANNEL16,
    ]
)
