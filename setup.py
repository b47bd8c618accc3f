from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="fedscale_halor",
    version="0.1.0",
    description="Federated learning simulation at FedScale's scale with Halor's data management",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["fedscale_halor", "fedscale_halor.*"]),
    package_data={"fedscale_halor": ["transport/proto/*.proto"]},
    install_requires=[
        "torch>=2.1",
        "torchvision>=0.16",
        "numpy>=1.24",
        "pyyaml>=6.0",
        "grpcio>=1.85.1",
        "protobuf>=7.35.1",
        "pandas>=2.0",
        "safetensors>=0.4",
        "cryptography>=42",
        "dp-accounting>=0.6.0",
        "scikit-learn>=1.3",
        "tensorboard>=2.15",
        "wandb>=0.16",
        "matplotlib>=3.7",
        "pillow>=10",
        "psutil>=5.9",
        "tqdm>=4.60",
    ],
    extras_require={"test": ["pytest>=8", "ruff>=0.5", "grpcio-tools>=1.85.1", "hypothesis>=6.100"]},
    entry_points={"console_scripts": ["fedscale-halor=fedscale_halor.cli:main"]},
)
