import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def private_jobs_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Job records of test runs go to a temporary folder, never to the user's ~/.fedscale_halor/jobs."""
    previous = os.environ.get("FEDSCALE_HALOR_JOBS_DIR")
    os.environ["FEDSCALE_HALOR_JOBS_DIR"] = str(tmp_path_factory.mktemp("jobs"))
    yield
    if previous is None:
        del os.environ["FEDSCALE_HALOR_JOBS_DIR"]
    else:
        os.environ["FEDSCALE_HALOR_JOBS_DIR"] = previous
