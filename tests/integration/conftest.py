from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def digits_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One prepared copy of digits for the whole session (prepare writes next to the raw data)."""
    return tmp_path_factory.mktemp("digits-data")
