"""The kit's networks (one per ``*_arch.py``), built by name, counted against each edition's limit, and
recognised from their state dicts.

Modules, each importing only those listed after it: :mod:`~facesr.models.zoo` (foreign state dicts through
spandrel), :mod:`~facesr.models.sizing` (the count the limit applies to, SPAN's fused form, ``size_to_budget``),
:mod:`~facesr.models.registry` (the networks' records, ``build_generator``, ``register_generator``),
:mod:`~facesr.models.budget` (counts and limits), :mod:`~facesr.models.state_dicts` (what a state dict holds),
the networks and their records (``*_arch.py``; ``*_record.py`` beside the spandrel ones),
:mod:`~facesr.models.spandrel_support` and :mod:`~facesr.models.record` (``GeneratorRecord``).
"""

from facesr.models.budget import check_param_budget, count_parameters, param_limit, perceptual_vgg_params
from facesr.models.modified_vgg_arch import ModifiedVGG
from facesr.models.msrresnet_arch import MSRResNet
from facesr.models.msrresnet_basicsr_arch import MSRResNetBasicSR
from facesr.models.record import GeneratorRecord
from facesr.models.registry import (
    GENERATORS,
    build_generator,
    generator_record,
    generator_records,
    register_generator,
    unregister_generator,
)
from facesr.models.rrdbnet_arch import RRDBNet
from facesr.models.sizing import count_generator, inference_form, size_to_budget
from facesr.models.state_dicts import describe_state_dict, generator_architecture, is_basicsr_msrresnet
from facesr.models.vgg_arch import VGGFeatureExtractor

__all__ = [
    "GENERATORS",
    "GeneratorRecord",
    "MSRResNet",
    "MSRResNetBasicSR",
    "ModifiedVGG",
    "RRDBNet",
    "VGGFeatureExtractor",
    "build_generator",
    "check_param_budget",
    "count_generator",
    "count_parameters",
    "describe_state_dict",
    "generator_architecture",
    "generator_record",
    "generator_records",
    "inference_form",
    "is_basicsr_msrresnet",
    "param_limit",
    "perceptual_vgg_params",
    "register_generator",
    "size_to_budget",
    "unregister_generator",
]
