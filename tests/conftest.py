import os

import numpy as np
import pytest
import torch

torch.set_num_threads(1)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(ROOT, "samples")


@pytest.fixture(scope="session")
def engine():
    from audiocodec.stream.engine import load_engine

    return load_engine()


@pytest.fixture(scope="session")
def speech():
    from audiocodec.audio import load

    return load(os.path.join(SAMPLES, "speech_female.wav"))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
