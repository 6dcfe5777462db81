"""`open_store` loads only the store it opens."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
from stacktrail.archive.stores import open_store
from stacktrail.config import Settings

store = open_store(Settings(archive_store="file", archive_dir=sys.argv[1]))
print(type(store).__name__, "boto3" in sys.modules, "botocore" in sys.modules)
"""


def test_a_pipeline_without_s3_never_loads_boto3(tmp_path: Path) -> None:
    """boto3 and botocore add 8 MB to the RSS of a pipeline process: only S3 pays it."""
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout.split()
    assert out == ["LocalDirStore", "False", "False"]
