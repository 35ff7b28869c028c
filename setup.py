"""sslasr_plugin: semi-supervised speech recognition as a fairseq user dir.

fairseq itself is not a hard requirement, so that a fairseq built from source is never
replaced: `pip install -e .` uses the fairseq you have, `pip install -e .[fairseq]` installs
the tested prebuilt one (ve-fairseq, fairseq's main branch for Python 3.11/3.12).
"""
from setuptools import find_packages, setup

setup(
    name="sslasr_plugin",
    version="0.1.0",
    description="Semi-supervised speech recognition (CSL, joint CPC+CTC, slimIPL) for fairseq",
    packages=find_packages(include=["sslasr_plugin", "sslasr_plugin.*", "data_prep", "data_prep.*", "sslasr_data"]),
    package_data={"sslasr_plugin": ["config/*.yaml"]},  # the examples' shared hydra settings
    python_requires=">=3.9",
    install_requires=["torch", "torchaudio", "soundfile", "editdistance", "sentencepiece", "tqdm"],
    extras_require={"fairseq": ["ve-fairseq==0.12.3"], "test": ["pytest"]},
)
